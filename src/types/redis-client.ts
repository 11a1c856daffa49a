import type { Cluster, Redis } from 'ioredis';

/** A Redis connection: one server, or a cluster (every run script touches one slot, so both work). */
export type RedisClient = Redis | Cluster;
