/**
 * A local Serverless Framework (osls) plugin: what the template needs that neither the framework nor
 * serverless-iam-roles-per-function does. It runs once `resources:` is merged, after the per-function
 * roles exist (that plugin runs at `before:package:finalize`), so every function, the `keys` function
 * and any added later included, gets the same treatment without listing it here:
 *
 * - the framework's shared `IamRoleLambdaExecution` is removed when no function uses it (each function
 *   has its own role);
 * - the managed AWSLambdaVPCAccessExecutionRole (it also grants logs:CreateLogGroup/PutLogEvents on `*`)
 *   is replaced by an inline statement with the network-interface actions only;
 * - an Errors and a Throttles alarm per function, notifying `custom.alarms.actions`;
 * - `custom.templateRules` becomes the template's `Rules` section (the framework's schema has no `Rules`);
 * - package-time checks with one clear line each: vpcId and workerImage set, at least two private
 *   subnets (Redis Multi-AZ), and
 *   no `lambdaFunctionArns` entry that matches one of this stack's own functions.
 */
'use strict';

const VPC_POLICY = 'AWSLambdaVPCAccessExecutionRole';

/** What Lambda needs to attach a function to the VPC (the managed policy minus its logs:* on `*`). */
const ENI_STATEMENTS = [
  // Describe* have no resource-level permissions: `*` is the only resource they accept.
  { Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: '*' },
  // Lambda's documentation asks for "all resource ids" of this account and region for these.
  {
    Effect: 'Allow',
    Action: ['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
    Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:*/*' },
  },
];

/** An IAM-style glob (`*`, `?`) as an anchored regular expression. */
function globToRegExp(glob) {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

class SwitchyardOpsPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    // After the framework merged `resources:` (Parameters included) into the template, before it is written.
    this.hooks = { 'after:aws:package:finalize:mergeCustomProviderResources': () => this.finalize() };
  }

  fail(message) {
    throw new this.serverless.classes.Error(`switchyard: ${message}`);
  }

  finalize() {
    const service = this.serverless.service;
    const template = service.provider.compiledCloudFormationTemplate;
    const custom = service.custom || {};
    this.checkSubnets(template);
    this.checkLambdaArns(template);
    this.replaceVpcManagedPolicy(template);
    this.removeUnusedSharedRole(template);
    this.addFunctionAlarms(template, custom.alarms || {});
    if (custom.templateRules) template.Rules = { ...(template.Rules || {}), ...custom.templateRules };
  }

  /** The parameters without a usable default; ElastiCache Multi-AZ needs subnets in two AZs. */
  checkSubnets(template) {
    const params = template.Parameters || {};
    if (params.VpcId && !params.VpcId.Default) this.fail('vpcId is not set: pass --param=vpcId=vpc-... (npm run deploy does)');
    const container = JSON.stringify(template.Resources.WorkerTaskDefinition || {});
    if (container.includes('"Image":""')) {
      this.fail('workerImage is not set: deploy with `npm run deploy` (it builds and pushes the image), or pass --param=workerImage=<uri>:<tag>');
    }
    const param = params.PrivateSubnetIds;
    if (!param) return;
    const subnets = String(param.Default || '').split(',').map((s) => s.trim()).filter(Boolean);
    if (subnets.length < 2) {
      this.fail(`privateSubnetIds needs at least two private subnets in different Availability Zones (Redis Multi-AZ); got "${param.Default}"`);
    }
  }

  /** `lambda` nodes may never call the stack's own functions (the template also denies them in IAM). */
  checkLambdaArns(template) {
    const param = template.Parameters && template.Parameters.LambdaFunctionArns;
    if (!param || !param.Default) return;
    const names = this.serverless.service.getAllFunctions().map((fn) => this.serverless.service.getFunction(fn).name);
    for (const arn of String(param.Default).split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!/^arn:[^:]+:lambda:[^:]*:[^:]*:function:[^:]+(:[^:]+)?$/.test(arn)) {
        this.fail(`lambdaFunctionArns entry "${arn}" is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)`);
      }
      const pattern = globToRegExp(arn.split(':')[6]);
      const own = names.find((name) => pattern.test(name));
      if (own) this.fail(`lambdaFunctionArns entry "${arn}" matches this stack's own function ${own}: list only the functions your blueprints call`);
    }
  }

  replaceVpcManagedPolicy(template) {
    for (const resource of Object.values(template.Resources)) {
      if (resource.Type !== 'AWS::IAM::Role' || !Array.isArray(resource.Properties.ManagedPolicyArns)) continue;
      const managed = resource.Properties.ManagedPolicyArns;
      const kept = managed.filter((arn) => !JSON.stringify(arn).includes(VPC_POLICY));
      if (kept.length === managed.length) continue;
      if (kept.length) resource.Properties.ManagedPolicyArns = kept;
      else delete resource.Properties.ManagedPolicyArns;
      resource.Properties.Policies[0].PolicyDocument.Statement.push(...ENI_STATEMENTS);
    }
  }

  removeUnusedSharedRole(template) {
    const naming = this.serverless.getProvider('aws').naming;
    const shared = naming.getRoleLogicalId();
    if (!template.Resources[shared]) return;
    const rest = { ...template, Resources: { ...template.Resources } };
    delete rest.Resources[shared];
    const text = JSON.stringify(rest);
    const used = text.includes(`"Ref":"${shared}"`) || text.includes(`["${shared}",`) || text.includes(`"${shared}"]`) || text.includes(`"DependsOn":"${shared}"`);
    if (!used) delete template.Resources[shared];
  }

  addFunctionAlarms(template, alarms) {
    const naming = this.serverless.getProvider('aws').naming;
    const service = this.serverless.service;
    for (const name of service.getAllFunctions()) {
      const fn = service.getFunction(name);
      const id = naming.getNormalizedFunctionName(name);
      for (const metric of ['Errors', 'Throttles']) {
        template.Resources[`${id}${metric}Alarm`] = {
          Type: 'AWS::CloudWatch::Alarm',
          Properties: {
            AlarmDescription: `${fn.name}: ${metric === 'Errors' ? 'invocations failed (an unhandled error or a timeout)' : 'invocations were throttled'} in the last 5 minutes`,
            Namespace: 'AWS/Lambda',
            MetricName: metric,
            Dimensions: [{ Name: 'FunctionName', Value: { Ref: naming.getLambdaLogicalId(name) } }],
            Statistic: 'Sum',
            Period: 300,
            EvaluationPeriods: 1,
            Threshold: 1,
            ComparisonOperator: 'GreaterThanOrEqualToThreshold',
            TreatMissingData: 'notBreaching',
            ...(alarms.actions ? { AlarmActions: alarms.actions, OKActions: alarms.actions } : {}),
          },
        };
      }
    }
  }
}

module.exports = SwitchyardOpsPlugin;
