// esbuild plugins for the Lambda bundles (serverless.yml custom.esbuild.plugins).
//
// BullMQ 6's entry pulls in its Postgres backend, whose SQL scripts (~260 KiB of text) no Switchyard
// function can use (our queue is Redis): the module that holds them is replaced by one exporting the same
// names, empty, so the function zips stay within their 1 MiB budget. A Postgres backend in a bundle would
// find no SQL to run; nothing here creates one.
/** @type {import('esbuild').Plugin} */
const dropBullmqPostgresSql = {
  name: 'drop-bullmq-postgres-sql',
  setup(build) {
    build.onResolve({ filter: /\/sql-scripts(\.js)?$/ }, (args) =>
      /[\\/]bullmq[\\/]dist[\\/]/.test(args.importer) ? { path: 'bullmq-postgres-sql-scripts', namespace: 'switchyard-empty' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'switchyard-empty' }, () => ({
      contents: 'export const SQL_COMMANDS = {};\nexport const SQL_MIGRATIONS = {};\n',
      loader: 'js',
    }));
  },
};

module.exports = [dropBullmqPostgresSql];
