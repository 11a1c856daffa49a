/**
 * scripts/serverless-ops-plugin.cjs, driven with a minimal stand-in for the framework (what the plugin
 * reads of it), for the package-time checks that stop `serverless package`/`deploy` with one line. The
 * packaged template itself is checked in deploy-template.redis.test.ts.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const Plugin = require('../scripts/serverless-ops-plugin.cjs');

class FrameworkError extends Error {}

function fakeServerless(parameters: Record<string, string>, image = 'x.dkr.ecr.us-east-1.amazonaws.com/w:1') {
  const functions: Record<string, { name: string }> = { startRun: { name: 'switchyard-prod-startRun' }, keys: { name: 'switchyard-prod-keys' } };
  const template = {
    Parameters: Object.fromEntries(Object.entries(parameters).map(([k, v]) => [k, { Type: 'String', Default: v }])),
    Resources: {
      WorkerTaskDefinition: { Type: 'AWS::ECS::TaskDefinition', Properties: { ContainerDefinitions: [{ Image: image }] } },
    } as Record<string, unknown>,
  };
  return {
    template,
    serverless: {
      classes: { Error: FrameworkError },
      service: {
        custom: {},
        provider: { compiledCloudFormationTemplate: template },
        getAllFunctions: () => Object.keys(functions),
        getFunction: (name: string) => functions[name],
      },
      getProvider: () => ({
        naming: {
          getRoleLogicalId: () => 'IamRoleLambdaExecution',
          getNormalizedFunctionName: (n: string) => n[0]!.toUpperCase() + n.slice(1),
          getLambdaLogicalId: (n: string) => `${n[0]!.toUpperCase()}${n.slice(1)}LambdaFunction`,
        },
      }),
    },
  };
}

const finalize = (parameters: Record<string, string>, image?: string) => {
  const { serverless, template } = fakeServerless(parameters, image);
  const plugin = new Plugin(serverless);
  plugin.hooks['after:aws:package:finalize:mergeCustomProviderResources']();
  return template;
};
const OK = { VpcId: 'vpc-0123456789abcdef0', PrivateSubnetIds: 'subnet-a,subnet-b' };

describe('package-time checks (one line each)', () => {
  it('needs vpcId, a worker image and two private subnets', () => {
    expect(() => finalize(OK)).not.toThrow();
    expect(() => finalize({ ...OK, VpcId: '' })).toThrow(/^switchyard: vpcId is not set/);
    expect(() => finalize(OK, '')).toThrow(/^switchyard: workerImage is not set: deploy with `npm run deploy`/);
    expect(() => finalize({ ...OK, PrivateSubnetIds: 'subnet-a' })).toThrow(/^switchyard: privateSubnetIds needs at least two private subnets in different Availability Zones/);
  });

  it('rejects lambdaFunctionArns entries that are no function ARN or match one of the stack\'s own functions', () => {
    const arn = (name: string) => `arn:aws:lambda:us-east-1:123456789012:function:${name}`;
    expect(() => finalize({ ...OK, LambdaFunctionArns: `${arn('enrich-customer')},${arn('enrich-customer:live')}` })).not.toThrow();
    expect(() => finalize({ ...OK, LambdaFunctionArns: `${arn('enrich-customer')},${arn('switchyard-*')}` })).toThrow(
      /^switchyard: lambdaFunctionArns entry ".*function:switchyard-\*" matches this stack's own function switchyard-prod-startRun/,
    );
    expect(() => finalize({ ...OK, LambdaFunctionArns: arn('switchyard-prod-keys') })).toThrow(/own function switchyard-prod-keys/);
    expect(() => finalize({ ...OK, LambdaFunctionArns: 'enrich-customer' })).toThrow(/is not a Lambda function ARN/);
  });

  it('adds an Errors and a Throttles alarm for every function, those added later (keys) included', () => {
    const template = finalize(OK);
    expect(Object.keys(template.Resources).filter((k) => k.endsWith('Alarm')).sort()).toEqual(['KeysErrorsAlarm', 'KeysThrottlesAlarm', 'StartRunErrorsAlarm', 'StartRunThrottlesAlarm']);
  });
});
