/**
 * `npm run package` (serverless package, offline) and the CloudFormation template it writes: the
 * resources, how they are wired, and what every IAM role may do. Also the bundle budget per function.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { readZip } from '../scripts/cold-start.js';
import { startLocalRedis } from '../src/local/redis-server.js';
import { sendJson, startJsonServer } from './support/fake-http.js';

const ROOT = join(import.meta.dirname, '..');
const TEMPLATE = join(ROOT, '.serverless', 'cloudformation-template-update-stack.json');
const MIB = 1024 * 1024;

interface Resource {
  Type: string;
  Properties: Record<string, any>;
  DependsOn?: string | string[];
}
let template: {
  Resources: Record<string, Resource & { Condition?: string; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
  Parameters?: Record<string, any>;
  Conditions?: Record<string, any>;
  Rules?: Record<string, any>;
  Outputs?: Record<string, any>;
};
let resources: Record<string, Resource>;

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const one = (type: string): [string, Resource] => {
  const found = ofType(type);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};
const ref = (name: string) => ({ Ref: name });
const getAtt = (name: string, attribute: string) => ({ 'Fn::GetAtt': [name, attribute] });

/** Both branches of every Fn::If (minus AWS::NoValue), so conditional statements are checked too. */
function branches(value: any): any[] {
  if (value && typeof value === 'object' && 'Fn::If' in value) return [...branches(value['Fn::If'][1]), ...branches(value['Fn::If'][2])];
  if (value && typeof value === 'object' && value.Ref === 'AWS::NoValue') return [];
  return [value];
}
const list = (value: any): any[] => branches(value).flatMap((v) => (Array.isArray(v) ? v.flatMap(branches) : [v]));

/** Every statement of a role's inline policies. */
function statements(role: Resource): any[] {
  return list(role.Properties.Policies ?? []).flatMap((policy) => list(policy.PolicyDocument.Statement));
}

const FUNCTIONS = ['StartRun', 'GetRun', 'CancelRun', 'Blueprints', 'Backlog', 'Keys'] as const;

beforeAll(async () => {
  // The real command CI and users run; offline, a few seconds plus bundling.
  await promisify(execFile)('npm', ['run', 'package'], { cwd: ROOT, timeout: 280_000, maxBuffer: 16 * MIB });
  template = JSON.parse(readFileSync(TEMPLATE, 'utf8'));
  resources = template.Resources;
}, 300_000);

describe('HTTP API and functions', () => {
  it('routes each endpoint to its function through a payload 2.0 integration', () => {
    const routes = Object.fromEntries(
      ofType('AWS::ApiGatewayV2::Route').map(([, route]) => {
        const integration = resources[route.Properties.Target['Fn::Join'][1][1].Ref]!;
        expect(integration.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
        return [route.Properties.RouteKey, integration.Properties.IntegrationUri['Fn::GetAtt'][0]];
      }),
    );
    expect(routes).toEqual({
      'POST /runs': 'StartRunLambdaFunction',
      'GET /runs/{runId}': 'GetRunLambdaFunction',
      'GET /runs/{runId}/events': 'GetRunLambdaFunction',
      'POST /runs/{runId}/cancel': 'CancelRunLambdaFunction',
      'POST /runs/{runId}/redrive': 'CancelRunLambdaFunction',
      'POST /runs/{runId}/signals/{nodeId}': 'CancelRunLambdaFunction',
      'GET /blueprints': 'BlueprintsLambdaFunction',
      'GET /blueprints/{id}': 'BlueprintsLambdaFunction',
      'PUT /blueprints/{id}': 'BlueprintsLambdaFunction',
      'GET /limits': 'BlueprintsLambdaFunction',
      $default: 'BlueprintsLambdaFunction',
    });
  });

  it('runs every function on Node.js 22, arm64, in the VPC behind the function security group, with its own role', () => {
    const roles = new Set<string>();
    for (const name of FUNCTIONS) {
      const fn = resources[`${name}LambdaFunction`]!;
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'] });
      expect(fn.Properties.VpcConfig.SecurityGroupIds).toEqual([getAtt('FunctionSecurityGroup', 'GroupId')]);
      expect(fn.Properties.VpcConfig.SubnetIds['Fn::Split'][0]).toBe(',');
      expect(fn.Properties.Role).toEqual(getAtt(`${name}IamRoleLambdaExecution`, 'Arn'));
      roles.add(fn.Properties.Role['Fn::GetAtt'][0]);
    }
    expect(roles.size).toBe(FUNCTIONS.length);
    expect(resources.StartRunLambdaFunction!.Properties.Handler).toBe('functions/http.startRun');
    expect(resources.BacklogLambdaFunction!.Properties.Handler).toBe('functions/backlog.backlog');
    // API Gateway waits 30 s for a Lambda: the HTTP functions stop before it does.
    for (const name of ['StartRun', 'GetRun', 'CancelRun', 'Blueprints']) expect(resources[`${name}LambdaFunction`]!.Properties.Timeout).toBeLessThan(30);
  });

  it('gives the functions the Redis endpoint and the secret ARN, never the AUTH token, and auth on by default', () => {
    for (const name of FUNCTIONS) {
      const env = resources[`${name}LambdaFunction`]!.Properties.Environment.Variables;
      expect(env).toMatchObject({ REDIS_TLS: 'true', REDIS_PORT: '6379', REDIS_AUTH_SECRET_ARN: ref('RedisAuthSecret'), REDIS_CLUSTER: ref('RedisClusterMode') });
      expect(env.REDIS_HOST['Fn::If'][0]).toBe('RedisClusterMode');
      expect(env.REDIS_URL).toBeUndefined();
      expect(JSON.stringify(env)).not.toMatch(/resolve:secretsmanager|PASSWORD|AUTH_TOKEN/i);
      expect(env.SWITCHYARD_AUTH).toEqual({ 'Fn::If': ['AuthDisabled', 'off', 'on'] });
    }
    expect(template.Parameters!.AuthEnabled.Default).toBe('true');
    expect(template.Conditions!.AuthDisabled).toEqual({ 'Fn::Equals': [ref('AuthEnabled'), 'false'] });
  });

  it('runs the backlog function every minute', () => {
    const [, rule] = one('AWS::Events::Rule');
    expect(rule.Properties.ScheduleExpression).toBe('rate(1 minute)');
    expect(rule.Properties.Targets).toEqual([expect.objectContaining({ Arn: getAtt('BacklogLambdaFunction', 'Arn') })]);
  });
});

describe('keys admin function', () => {
  it('has no HTTP route, schedule or resource policy: only an IAM principal allowed lambda:InvokeFunction can call it', () => {
    expect(resources.KeysLambdaFunction!.Properties.Handler).toBe('functions/keys.keys');
    const mentions = Object.entries(resources).filter(([name, r]) => name !== 'KeysLambdaFunction' && !name.startsWith('Keys') && JSON.stringify(r).includes('KeysLambdaFunction'));
    expect(mentions.map(([name]) => name)).toEqual([]);
    expect(ofType('AWS::Lambda::Permission').filter(([name]) => name.startsWith('Keys'))).toEqual([]);
  });
});

describe('network', () => {
  it('lets only the functions and the worker reach Redis, on 6379 only', () => {
    const redisSg = resources.RedisSecurityGroup!.Properties;
    expect(redisSg.VpcId).toEqual(ref('VpcId'));
    expect(template.Parameters!.VpcId).toEqual({ Type: 'AWS::EC2::VPC::Id', Default: 'vpc-0123456789abcdef0' });
    expect(redisSg.SecurityGroupIngress).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 6379, ToPort: 6379, SourceSecurityGroupId: getAtt('FunctionSecurityGroup', 'GroupId') }),
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 6379, ToPort: 6379, SourceSecurityGroupId: getAtt('WorkerSecurityGroup', 'GroupId') }),
    ]);
    for (const rule of redisSg.SecurityGroupIngress) expect(rule.CidrIp ?? rule.CidrIpv6).toBeUndefined();
    // No ingress added elsewhere, and no open ingress on the other two groups.
    expect(ofType('AWS::EC2::SecurityGroupIngress')).toEqual([]);
    expect(resources.FunctionSecurityGroup!.Properties.SecurityGroupIngress).toBeUndefined();
    expect(resources.WorkerSecurityGroup!.Properties.SecurityGroupIngress).toBeUndefined();
    expect(resources.RedisReplicationGroup!.Properties.SecurityGroupIds).toEqual([getAtt('RedisSecurityGroup', 'GroupId')]);
    expect(resources.WorkerService!.Properties.NetworkConfiguration.AwsvpcConfiguration).toMatchObject({
      AssignPublicIp: 'DISABLED',
      SecurityGroups: [getAtt('WorkerSecurityGroup', 'GroupId')],
    });
  });
});

describe('ElastiCache', () => {
  it('encrypts in transit and at rest, with an AUTH token resolved from a generated Secrets Manager secret', () => {
    const rg = resources.RedisReplicationGroup!.Properties;
    expect(rg).toMatchObject({ TransitEncryptionEnabled: true, AtRestEncryptionEnabled: true, Port: 6379, Engine: 'valkey' });
    expect(rg.AuthToken).toEqual({ 'Fn::Sub': '{{resolve:secretsmanager:${RedisAuthSecret}:SecretString}}' });
    expect(rg.CacheParameterGroupName).toEqual(ref('RedisParameterGroup'));
    expect(rg.CacheSubnetGroupName).toEqual(ref('RedisSubnetGroup'));
    expect(rg.ClusterMode).toEqual({ 'Fn::If': ['RedisClusterMode', 'enabled', 'disabled'] });
    expect(resources.RedisAuthSecret!.Properties.GenerateSecretString).toMatchObject({ ExcludePunctuation: true });
    expect(resources.RedisAuthSecret!.Properties.GenerateSecretString.PasswordLength).toBeGreaterThanOrEqual(32);
  });

  it('gives cluster mode redisShards shards, and the functions and the worker as many queue shards (1 without cluster mode)', () => {
    const shards = { 'Fn::If': ['RedisClusterMode', ref('RedisShards'), '1'] };
    for (const name of FUNCTIONS) expect(resources[`${name}LambdaFunction`]!.Properties.Environment.Variables.SWITCHYARD_QUEUE_SHARDS).toEqual(shards);
    const c = resources.WorkerTaskDefinition!.Properties.ContainerDefinitions[0];
    expect(c.Environment).toContainEqual({ Name: 'SWITCHYARD_QUEUE_SHARDS', Value: shards });
    expect(resources.RedisReplicationGroup!.Properties.NumNodeGroups).toEqual({ 'Fn::If': ['RedisClusterMode', ref('RedisShards'), ref('AWS::NoValue')] });
    expect(template.Parameters!.RedisShards).toMatchObject({ Type: 'Number', Default: '1', MinValue: 1 });
  });

  it('uses noeviction in both modes, and cluster-enabled only in cluster mode', () => {
    const pg = resources.RedisParameterGroup!.Properties;
    const [condition, cluster, single] = pg.Properties['Fn::If'];
    expect(condition).toBe('RedisClusterMode');
    expect(cluster).toEqual({ 'maxmemory-policy': 'noeviction', 'cluster-enabled': 'yes' });
    expect(single).toEqual({ 'maxmemory-policy': 'noeviction' });
    expect(template.Conditions!.RedisClusterMode).toEqual({ 'Fn::Equals': [ref('RedisClusterMode'), 'true'] });
    expect(template.Parameters!.RedisClusterMode.Default).toBe('false');
  });
});

describe('worker on ECS Fargate', () => {
  it('has Container Insights on and a service without DesiredCount, with a rolling-back circuit breaker', () => {
    expect(resources.WorkerCluster!.Properties.ClusterSettings).toEqual([{ Name: 'containerInsights', Value: 'enabled' }]);
    const service = resources.WorkerService!.Properties;
    expect(service).not.toHaveProperty('DesiredCount');
    expect(service).toMatchObject({ LaunchType: 'FARGATE', Cluster: ref('WorkerCluster'), TaskDefinition: ref('WorkerTaskDefinition') });
    expect(service.DeploymentConfiguration.DeploymentCircuitBreaker).toEqual({ Enable: true, Rollback: true });
  });

  it('runs `switchyard worker` from the image parameter on arm64, with the token as a container secret, logs, a health check and a 120 s stop timeout', () => {
    const task = resources.WorkerTaskDefinition!.Properties;
    expect(task).toMatchObject({
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      Cpu: '1024',
      Memory: '2048',
      ExecutionRoleArn: getAtt('WorkerExecutionRole', 'Arn'),
      TaskRoleArn: getAtt('WorkerTaskRole', 'Arn'),
    });
    expect(task.ContainerDefinitions).toHaveLength(1);
    const c = task.ContainerDefinitions[0];
    expect(c.Image).toBe('123456789012.dkr.ecr.us-east-1.amazonaws.com/switchyard-worker:dev');
    expect(c.Command).toEqual(['worker', '--blueprints', 'workflows', '--concurrency', '64']);
    // The image's own entry point (node bin/switchyard.mjs): the worker reads the endpoint and token itself.
    expect(c.EntryPoint).toBeUndefined();
    expect(list(c.Secrets)).toContainEqual({ Name: 'REDIS_AUTH_TOKEN', ValueFrom: ref('RedisAuthSecret') });
    const env = Object.fromEntries(list(c.Environment).map((e: any) => [e.Name, e.Value]));
    // ECS validates these against its schema: strings, not numbers.
    for (const value of [...c.Command, ...Object.values(env)]) if (typeof value !== 'object') expect(typeof value).toBe('string');
    expect(env).toMatchObject({ REDIS_PORT: '6379', REDIS_TLS: 'true', SWITCHYARD_LLM: ref('LlmProvider'), SWITCHYARD_QUEUE: 'switchyard', SWITCHYARD_PREFIX: 'sy' });
    expect(JSON.stringify(c.Environment)).not.toMatch(/resolve:secretsmanager|TOKEN|PASSWORD/);
    // The worker's own liveness (its heartbeat file), not a Redis PING.
    expect(c.HealthCheck).toMatchObject({ Command: ['CMD', 'node', '/app/bin/switchyard.mjs', 'health', '--max-age-seconds', '30'] });
    expect(env.SWITCHYARD_HEARTBEAT_FILE).toBe('/tmp/switchyard-heartbeat');
    // The root filesystem is read-only: /tmp is a task volume the heartbeat can be written to.
    expect(c.ReadonlyRootFilesystem).toBe(true);
    expect(c.MountPoints).toEqual([{ SourceVolume: 'tmp', ContainerPath: '/tmp', ReadOnly: false }]);
    expect(resources.WorkerTaskDefinition!.Properties.Volumes).toEqual([{ Name: 'tmp' }]);
    expect(env).toMatchObject({ SWITCHYARD_RUN_TTL_SECONDS: '604800', SWITCHYARD_TASK_PROTECTION: 'true', SWITCHYARD_METRIC_SERVICE: 'switchyard-dev' });
    expect(c.HealthCheck.Interval * c.HealthCheck.Retries).toBeLessThanOrEqual(300);
    expect(c.StopTimeout).toBe(120);
    expect(c.LogConfiguration).toMatchObject({ LogDriver: 'awslogs', Options: { 'awslogs-group': ref('WorkerLogGroup') } });
    expect(resources.WorkerLogGroup!.Properties.RetentionInDays).toBeGreaterThan(0);
  });

  it('scales the service between min and max tasks on backlog per running task (metric math)', () => {
    const target = resources.WorkerScalableTarget!.Properties;
    expect(target).toMatchObject({ ServiceNamespace: 'ecs', ScalableDimension: 'ecs:service:DesiredCount', MinCapacity: 1, MaxCapacity: 10 });
    expect(target.ResourceId).toEqual({ 'Fn::Sub': 'service/${WorkerCluster}/${WorkerService.Name}' });

    const policy = resources.WorkerBacklogScalingPolicy!.Properties;
    expect(policy).toMatchObject({ PolicyType: 'TargetTrackingScaling', ScalingTargetId: ref('WorkerScalableTarget') });
    const config = policy.TargetTrackingScalingPolicyConfiguration;
    expect(config.TargetValue).toBeGreaterThan(0);
    const metrics: any[] = config.CustomizedMetricSpecification.Metrics;
    const byId = Object.fromEntries(metrics.map((m) => [m.Id, m]));
    // The backlog metric is the one the backlog function writes (same namespace, name and Service dimension).
    const service = resources.BacklogLambdaFunction!.Properties.Environment.Variables.SWITCHYARD_METRIC_SERVICE;
    expect(byId.backlog.MetricStat.Metric).toEqual({ Namespace: 'Switchyard', MetricName: 'QueueBacklog', Dimensions: [{ Name: 'Service', Value: service }] });
    expect(byId.running.MetricStat.Metric).toEqual({
      Namespace: 'ECS/ContainerInsights',
      MetricName: 'RunningTaskCount',
      Dimensions: [
        { Name: 'ClusterName', Value: ref('WorkerCluster') },
        { Name: 'ServiceName', Value: getAtt('WorkerService', 'Name') },
      ],
    });
    const returned = metrics.filter((m) => m.ReturnData);
    expect(returned).toHaveLength(1);
    // No RunningTaskCount datapoint (no task running) must count as 0, not as no data.
    expect(byId.runningOrZero.Expression).toBe('FILL(running, 0)');
    expect(returned[0].Expression).toBe('IF(runningOrZero > 0, backlog / runningOrZero, backlog)');
  });
});

describe('IAM', () => {
  // No resource-level permissions exist for these: '*' is the only resource they accept.
  const ALLOWED_STAR_RESOURCE = new Set(['ecr:GetAuthorizationToken', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets']);

  it('grants no wildcard actions and scopes every resource, in every role', () => {
    const roles = ofType('AWS::IAM::Role');
    expect(roles.length).toBeGreaterThanOrEqual(FUNCTIONS.length + 2);
    for (const [name, role] of roles) {
      for (const statement of statements(role)) {
        if (statement.Effect === 'Deny') continue; // a Deny narrows; only what is allowed must be scoped
        expect(statement.Effect, name).toBe('Allow');
        const actions: string[] = [statement.Action].flat();
        for (const action of actions) expect(action, `${name}: ${action}`).not.toContain('*');
        for (const resource of list(statement.Resource)) {
          if (resource === '*') expect(actions.every((a) => ALLOWED_STAR_RESOURCE.has(a)), `${name}: ${actions} on *`).toBe(true);
        }
      }
    }
  });

  it('lets each function read the Redis secret, write its own log group and attach to the VPC, and nothing else', () => {
    for (const name of FUNCTIONS) {
      const role = resources[`${name}IamRoleLambdaExecution`]!;
      const fnName = resources[`${name}LambdaFunction`]!.Properties.FunctionName;
      const s = statements(role);
      expect(s).toHaveLength(4);
      expect(s).toContainEqual({ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: ref('RedisAuthSecret') });
      const logs = s.find((x) => [x.Action].flat().includes('logs:PutLogEvents'));
      expect(JSON.stringify(logs.Resource)).toContain(`:log-group:/aws/lambda/${fnName}:`);
      // The network-interface actions inline, instead of AWSLambdaVPCAccessExecutionRole (logs:* on *).
      expect(s).toContainEqual({ Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: '*' });
      expect(s).toContainEqual({
        Effect: 'Allow',
        Action: ['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
        Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:*/*' },
      });
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
    expect(JSON.stringify(template)).not.toContain('AWSLambdaVPCAccessExecutionRole');
    // The framework's shared role (which no function uses) is not created.
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
    expect(JSON.stringify(template)).not.toMatch(/"IamRoleLambdaExecution"/);
  });

  it('lets ECS pull the image, read the secret and write the worker log group; the task may invoke its Lambdas and (with bedrock) the model', () => {
    const exec = statements(resources.WorkerExecutionRole!);
    const actions = (s: any[]) => s.flatMap((x) => [x.Action].flat()).sort();
    expect(actions(exec)).toEqual(
      ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetAuthorizationToken', 'ecr:GetDownloadUrlForLayer', 'logs:CreateLogStream', 'logs:PutLogEvents', 'secretsmanager:GetSecretValue'].sort(),
    );
    const secretRead = exec.find((x) => [x.Action].flat().includes('secretsmanager:GetSecretValue'));
    expect(list(secretRead.Resource)).toContainEqual(ref('RedisAuthSecret'));
    const logs = exec.find((x) => [x.Action].flat().includes('logs:PutLogEvents'));
    expect(logs.Resource).toEqual(getAtt('WorkerLogGroup', 'Arn'));
    expect(resources.WorkerExecutionRole!.Properties.ManagedPolicyArns).toBeUndefined();

    const task = statements(resources.WorkerTaskRole!);
    expect([...new Set(actions(task))]).toEqual(['bedrock:InvokeModel', 'ecs:GetTaskProtection', 'ecs:UpdateTaskProtection', 'lambda:InvokeFunction']);
    expect(resources.WorkerTaskRole!.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('lets the worker set and read scale-in protection on its cluster\'s tasks only', () => {
    const task = statements(resources.WorkerTaskRole!);
    expect(task).toContainEqual({
      Effect: 'Allow',
      Action: ['ecs:GetTaskProtection', 'ecs:UpdateTaskProtection'],
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${WorkerCluster}/*' },
    });
  });

  it('lets `lambda` nodes invoke only the lambdaFunctionArns (none by default), never this stack\'s own functions', () => {
    const policy = resources.WorkerTaskRole!.Properties.Policies.find((p: any) => p['Fn::If']?.[0] === 'HasLambdaFunctions');
    expect(policy['Fn::If'][2]).toEqual(ref('AWS::NoValue'));
    expect(template.Parameters!.LambdaFunctionArns.Default).toBe('');
    expect(template.Conditions!.HasLambdaFunctions).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [ref('LambdaFunctionArns'), ''] }] });
    const [allow, deny] = policy['Fn::If'][1].PolicyDocument.Statement;
    expect(allow).toEqual({ Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: { 'Fn::Split': [',', ref('LambdaFunctionArns')] } });
    expect(deny).toEqual({
      Effect: 'Deny',
      Action: ['lambda:InvokeFunction'],
      Resource: [{ 'Fn::Sub': 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:switchyard-dev-*' }],
    });
    for (const name of FUNCTIONS) expect(resources[`${name}LambdaFunction`]!.Properties.FunctionName).toMatch(/^switchyard-dev-/);
  });

  it('lets the worker call the Bedrock model, or a cross-region inference profile and its base model in the profile\'s regions (through the profile only)', () => {
    const policy = resources.WorkerTaskRole!.Properties.Policies.find((p: any) => p['Fn::If']?.[0] === 'UseBedrock');
    expect(policy['Fn::If'][2]).toEqual(ref('AWS::NoValue'));
    const [direct, viaProfile] = policy['Fn::If'][1].PolicyDocument.Statement;
    const model = 'anthropic.claude-3-5-haiku-20241022-v1:0';
    expect(direct.Resource).toEqual([
      { 'Fn::Sub': `arn:\${AWS::Partition}:bedrock:\${AWS::Region}::foundation-model/${model}` },
      { 'Fn::Sub': `arn:\${AWS::Partition}:bedrock:\${AWS::Region}:\${AWS::AccountId}:inference-profile/${model}` },
    ]);
    expect(viaProfile).toEqual({
      Effect: 'Allow',
      Action: ['bedrock:InvokeModel'],
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:bedrock:*::foundation-model/*' },
      Condition: { StringEquals: { 'bedrock:InferenceProfileArn': { 'Fn::Sub': `arn:\${AWS::Partition}:bedrock:\${AWS::Region}:\${AWS::AccountId}:inference-profile/${model}` } } },
    });
  });
});

describe('operations', () => {
  const alarms = () => ofType('AWS::CloudWatch::Alarm');
  const actions = { 'Fn::If': ['HasAlarmTopic', [ref('AlarmTopicArn')], ref('AWS::NoValue')] };

  it('alarms on Redis memory, the oldest waiting job, failed runs, missing worker tasks and every function\'s errors and throttles', () => {
    const byName = Object.fromEntries(alarms());
    const names = Object.keys(byName).sort();
    expect(names).toEqual(
      [
        'FailedRunsAlarm',
        'OldestWaitingJobAlarm',
        'RedisMemoryAlarm',
        'WorkerTasksBelowDesiredAlarm',
        ...FUNCTIONS.flatMap((f) => [`${f}ErrorsAlarm`, `${f}ThrottlesAlarm`]),
      ].sort(),
    );
    const memory = byName.RedisMemoryAlarm!.Properties;
    expect(memory.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat.Metric.MetricName)).toEqual(['DatabaseMemoryUsagePercentage', 'DatabaseMemoryUsagePercentage']);
    expect(memory.Metrics.find((m: any) => m.ReturnData).Expression).toBe('MAX([first, second])');
    expect(memory.Threshold).toBe(80);
    const members = memory.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat.Metric.Dimensions[0].Value);
    expect(members).toEqual([
      { 'Fn::If': ['RedisClusterMode', { 'Fn::Sub': '${RedisReplicationGroup}-0001-001' }, { 'Fn::Sub': '${RedisReplicationGroup}-001' }] },
      { 'Fn::If': ['RedisClusterMode', { 'Fn::Sub': '${RedisReplicationGroup}-0001-002' }, { 'Fn::Sub': '${RedisReplicationGroup}-002' }] },
    ]);

    // The oldest-job metric is the one the backlog function writes (same namespace, name and dimension).
    const service = resources.BacklogLambdaFunction!.Properties.Environment.Variables.SWITCHYARD_METRIC_SERVICE;
    expect(byName.OldestWaitingJobAlarm!.Properties).toMatchObject({
      Namespace: 'Switchyard',
      MetricName: 'OldestWaitingJobAge',
      Dimensions: [{ Name: 'Service', Value: service }],
      Threshold: 300,
      TreatMissingData: 'breaching',
    });
    // RunsFailed is the worker's EMF metric: namespace Switchyard, dimension Service = the container's SWITCHYARD_METRIC_SERVICE.
    const container = resources.WorkerTaskDefinition!.Properties.ContainerDefinitions[0];
    const workerService = container.Environment.find((e: any) => e.Name === 'SWITCHYARD_METRIC_SERVICE').Value;
    expect(byName.FailedRunsAlarm!.Properties).toMatchObject({
      Namespace: 'Switchyard',
      MetricName: 'RunsFailed',
      Dimensions: [{ Name: 'Service', Value: workerService }],
      Statistic: 'Sum',
      Period: 60,
      Threshold: 5,
      TreatMissingData: 'notBreaching',
    });
    const tasks = byName.WorkerTasksBelowDesiredAlarm!.Properties;
    expect(tasks.Metrics.map((m: any) => m.MetricStat?.Metric.MetricName ?? m.Expression)).toEqual(['RunningTaskCount', 'DesiredTaskCount', 'FILL(desired, 0) - FILL(running, 0)']);
    for (const f of FUNCTIONS) {
      for (const metric of ['Errors', 'Throttles']) {
        expect(byName[`${f}${metric}Alarm`]!.Properties).toMatchObject({
          Namespace: 'AWS/Lambda',
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: ref(`${f}LambdaFunction`) }],
          Threshold: 1,
        });
      }
    }
  });

  it('notifies the SNS topic of every alarm (ALARM and OK) only when alarmTopicArn is set', () => {
    expect(template.Parameters!.AlarmTopicArn.Default).toBe('');
    expect(template.Conditions!.HasAlarmTopic).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [ref('AlarmTopicArn'), ''] }] });
    for (const [name, alarm] of alarms()) {
      expect(alarm.Properties.AlarmActions, name).toEqual(actions);
      expect(alarm.Properties.OKActions, name).toEqual(actions);
    }
  });

  it('creates the VPC endpoints only when createVpcEndpoints=true, and needs route tables for the S3 gateway then', () => {
    const endpoints = ofType('AWS::EC2::VPCEndpoint') as [string, Resource & { Condition?: string }][];
    const services: Record<string, Resource> = Object.fromEntries(endpoints.map(([, e]) => [e.Properties.ServiceName['Fn::Sub'].replace('com.amazonaws.${AWS::Region}.', ''), e]));
    expect(Object.keys(services).sort()).toEqual(['bedrock-runtime', 'ecr.api', 'ecr.dkr', 'lambda', 'logs', 's3', 'secretsmanager']);
    for (const [name, e] of endpoints) {
      expect(e.Condition, name).toBe(name === 'BedrockRuntimeEndpoint' ? 'CreateBedrockEndpoint' : 'CreateVpcEndpoints');
      expect(e.Properties.VpcId).toEqual(ref('VpcId'));
    }
    expect(template.Parameters!.CreateVpcEndpoints.Default).toBe('false');
    expect(template.Conditions!.CreateVpcEndpoints).toEqual({ 'Fn::Equals': [ref('CreateVpcEndpoints'), 'true'] });
    expect(template.Conditions!.CreateBedrockEndpoint).toEqual({ 'Fn::And': [{ Condition: 'CreateVpcEndpoints' }, { Condition: 'UseBedrock' }] });
    for (const [service, e] of Object.entries(services)) {
      if (service === 's3') continue;
      expect(e.Properties).toMatchObject({ VpcEndpointType: 'Interface', PrivateDnsEnabled: true, SubnetIds: ref('PrivateSubnetIds'), SecurityGroupIds: [getAtt('EndpointSecurityGroup', 'GroupId')] });
    }
    expect(services.s3!.Properties).toMatchObject({ VpcEndpointType: 'Gateway', RouteTableIds: { 'Fn::Split': [',', ref('RouteTableIds')] } });
    const sg = template.Resources.EndpointSecurityGroup!;
    expect(sg.Condition).toBe('CreateVpcEndpoints');
    expect(sg.Properties.SecurityGroupIngress.map((r: any) => [r.FromPort, r.SourceSecurityGroupId])).toEqual([
      [443, getAtt('FunctionSecurityGroup', 'GroupId')],
      [443, getAtt('WorkerSecurityGroup', 'GroupId')],
    ]);
    expect(template.Rules!.EndpointsNeedRouteTables).toEqual({
      RuleCondition: { 'Fn::Equals': [ref('CreateVpcEndpoints'), 'true'] },
      Assertions: [{ Assert: { 'Fn::Not': [{ 'Fn::Equals': [ref('RouteTableIds'), ''] }] }, AssertDescription: expect.stringContaining('routeTableIds') }],
    });
  });

  it('takes the subnets as a typed list that CloudFormation checks belongs to the VPC (two or more: checked when packaging)', () => {
    expect(template.Parameters!.PrivateSubnetIds).toEqual({ Type: 'List<AWS::EC2::Subnet::Id>', Default: 'subnet-0123456789abcdef0,subnet-0fedcba9876543210' });
    expect(template.Rules!.SubnetsInVpc.Assertions[0].Assert).toEqual({ 'Fn::EachMemberEquals': [{ 'Fn::ValueOfAll': ['AWS::EC2::Subnet::Id', 'VpcId'] }, ref('VpcId')] });
    expect(resources.RedisSubnetGroup!.Properties.SubnetIds).toEqual(ref('PrivateSubnetIds'));
    expect(resources.RedisReplicationGroup!.Properties.MultiAZEnabled).toBe(true);
  });

  it('writes HTTP API access logs (JSON, no headers) to a log group with retention', () => {
    const stage = resources.HttpApiStage!;
    expect(stage.Properties.AccessLogSettings.DestinationArn).toEqual(getAtt('HttpApiLogGroup', 'Arn'));
    const format = JSON.parse(stage.Properties.AccessLogSettings.Format);
    expect(format).toMatchObject({ requestId: '$context.requestId', routeKey: '$context.routeKey', status: '$context.status', latencyMs: '$context.responseLatency' });
    expect(JSON.stringify(format)).not.toMatch(/authorization|api-key|header/i);
    expect(resources.HttpApiLogGroup!.Properties.RetentionInDays).toBe(30);
  });

  it('keeps a final snapshot of Redis and retains its AUTH secret when the stack is deleted or they are replaced', () => {
    expect(resources.RedisReplicationGroup).toMatchObject({ DeletionPolicy: 'Snapshot', UpdateReplacePolicy: 'Snapshot' });
    expect(resources.RedisAuthSecret).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });
});

describe('bundles', () => {
  it('writes one zip per function, each under 1 MiB, with its handler, a source map without sources and no AWS SDK', () => {
    const sizes: Record<string, string> = {};
    for (const name of FUNCTIONS) {
      const fn = resources[`${name}LambdaFunction`]!;
      const zipName = String(fn.Properties.Code.S3Key).split('/').pop()!;
      const zip = join(ROOT, '.serverless', zipName);
      const bytes = statSync(zip).size;
      sizes[zipName] = `${(bytes / 1024).toFixed(0)} KiB`;
      expect(bytes, zipName).toBeLessThan(MIB);
      const files = readZip(zip);
      const handlerFile = `${fn.Properties.Handler.replace(/\.[^.]+$/, '')}.js`;
      expect([...files.keys()], zipName).toContain(handlerFile);
      expect([...files.keys()].some((f) => f.includes('node_modules')), zipName).toBe(false);
      const map = JSON.parse(files.get(`${handlerFile}.map`)!.toString('utf8'));
      expect(map.sourcesContent ?? []).toEqual([]);
      const code = files.get(handlerFile)!.toString('utf8');
      // A require (which finds the runtime's SDK through NODE_PATH), not an import() (ESM resolution ignores NODE_PATH).
      expect(code.includes('require("@aws-sdk/client-secrets-manager")'), `${zipName}: SDK loaded with require`).toBe(true);
      expect(code.includes('import("@aws-sdk/'), `${zipName}: no dynamic import of the SDK`).toBe(false);
    }
    console.log(`function zip sizes: ${JSON.stringify(sizes)}`);
  });
});

describe('a packaged bundle in a fresh process', () => {
  it('reads the AUTH token from Secrets Manager (a local fake), authenticates to Redis with it and starts a run', async () => {
    const token = 'Tok3nFromSecretsManager0123456789abcdef';
    const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:switchyard-redis-AbCdEf';
    const redisServer = await startLocalRedis();
    const admin = new Redis(redisServer.url);
    await admin.config('SET', 'requirepass', token);
    const secretCalls: string[] = [];
    const secrets = await startJsonServer((req, body, res) => {
      secretCalls.push(`${req.headers['x-amz-target']} ${body.SecretId}`);
      sendJson(res, 200, { ARN: secretArn, Name: 'switchyard-redis', SecretString: token }, { 'content-type': 'application/x-amz-json-1.1' });
    });
    const dir = mkdtempSync(join(tmpdir(), 'sy-bundle-'));
    try {
      for (const [name, data] of readZip(join(ROOT, '.serverless', 'startRun.zip'))) {
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), data);
      }
      const script = `
        const { startRun } = require('./functions/http.js');
        const event = { version: '2.0', routeKey: 'POST /runs', rawPath: '/runs', rawQueryString: '', isBase64Encoded: false,
          headers: { 'content-type': 'application/json' }, body: JSON.stringify({ blueprintId: 'greeting', input: { name: 'Lambda' } }),
          requestContext: { http: { method: 'POST', path: '/runs', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'test' }, requestId: 'r1', routeKey: 'POST /runs', stage: '$default' } };
        startRun(event).then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e) => { console.error(e); process.exit(1); });`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--enable-source-maps', '-e', script], {
        cwd: dir,
        timeout: 60_000,
        env: {
          PATH: process.env.PATH,
          // Where the Lambda runtime keeps its AWS SDK v3: on NODE_PATH.
          NODE_PATH: join(ROOT, 'node_modules'),
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
          AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
          AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
          REDIS_HOST: '127.0.0.1',
          REDIS_PORT: String(redisServer.port),
          REDIS_TLS: 'false',
          REDIS_AUTH_SECRET_ARN: secretArn,
          SWITCHYARD_AUTH: 'off',
        },
      });
      const result = JSON.parse(stdout.trim().split('\n').pop()!);
      expect(result.statusCode, result.body).toBe(202);
      const { runId } = JSON.parse(result.body);
      expect(secretCalls).toEqual([`secretsmanager.GetSecretValue ${secretArn}`]);
      expect(stdout).not.toContain(token);
      await admin.auth(token);
      expect(await admin.exists(`sy:{${runId}}:state`)).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await secrets.close();
      admin.disconnect();
      await redisServer.stop();
    }
  });
});

describe('cfn-lint', () => {
  const cfnLint = (() => {
    try {
      execFileSync('cfn-lint', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  // Preinstalled on the project's machines; a machine without it skips this one check (listed as skipped).
  it.runIf(cfnLint)('finds nothing but the framework routes\' W3005 in the template', () => {
    const run = () => execFileSync('cfn-lint', ['-t', TEMPLATE, '-i', 'W3005'], { encoding: 'utf8', stdio: 'pipe' });
    expect(run).not.toThrow();
  });
});
