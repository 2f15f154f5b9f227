import { keyArn, rootArn } from './arn.ts';
import type { KeyEvent, KeyState } from './key.ts';

const DAY_MS = 86_400_000;

/**
 * AWS managed keys: the keys AWS services create in an account, named
 * `alias/aws/<service>`. An account's managed key for a name is created on the
 * first use of that alias (src/service/aws-managed-keys.ts); it is a symmetric
 * encryption key of KeyManager AWS whose policy is AWS's fixed one, and whose
 * material rotates every year.
 */

/**
 * The predefined aliases keyledger knows, by the name after `alias/aws/`, with
 * the service endpoint prefix the key policy's kms:ViaService names (EBS is
 * used through EC2) and the service's name in the policy's statement id. Any
 * other `alias/aws/<name>` does not exist, as in AWS.
 */
export const AWS_MANAGED_KEY_SERVICES: Readonly<Record<string, { endpoint: string; title: string }>> = {
  acm: { endpoint: 'acm', title: 'AWS Certificate Manager' },
  backup: { endpoint: 'backup', title: 'AWS Backup' },
  codecommit: { endpoint: 'codecommit', title: 'CodeCommit' },
  dynamodb: { endpoint: 'dynamodb', title: 'Amazon DynamoDB' },
  ebs: { endpoint: 'ec2', title: 'EBS' },
  elasticfilesystem: { endpoint: 'elasticfilesystem', title: 'Amazon Elastic File System' },
  es: { endpoint: 'es', title: 'Amazon OpenSearch Service' },
  fsx: { endpoint: 'fsx', title: 'FSx' },
  glue: { endpoint: 'glue', title: 'AWS Glue' },
  kinesis: { endpoint: 'kinesis', title: 'Amazon Kinesis' },
  kinesisvideo: { endpoint: 'kinesisvideo', title: 'Kinesis Video Streams' },
  lambda: { endpoint: 'lambda', title: 'AWS Lambda' },
  rds: { endpoint: 'rds', title: 'Amazon RDS' },
  redshift: { endpoint: 'redshift', title: 'Redshift' },
  s3: { endpoint: 's3', title: 'S3' },
  secretsmanager: { endpoint: 'secretsmanager', title: 'AWS Secrets Manager' },
  sns: { endpoint: 'sns', title: 'Amazon SNS' },
  sqs: { endpoint: 'sqs', title: 'Amazon SQS' },
  ssm: { endpoint: 'ssm', title: 'AWS Systems Manager' },
  xray: { endpoint: 'xray', title: 'AWS X-Ray' },
};

const PREFIX = 'alias/aws/';

/**
 * The predefined aliases themselves (`alias/aws/acm` ...): AWS lists them in
 * every account, without a TargetKeyId until their key is created.
 */
export const PREDEFINED_AWS_ALIASES: readonly string[] = Object.keys(AWS_MANAGED_KEY_SERVICES).map((name) => `${PREFIX}${name}`);

/** AWS rotates the material of its managed keys every year. */
export const AWS_MANAGED_ROTATION_PERIOD_DAYS = 365;

/** The actions AWS's managed-key policy lets the account's principals take through the service. */
const VIA_SERVICE_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:CreateGrant', 'kms:DescribeKey'];

/**
 * The service an `alias/aws/<name>` alias stands for; undefined for any other
 * alias name, and for a name under `alias/aws/` that is no predefined alias.
 *
 * @example
 * awsManagedAliasService('alias/aws/s3')   // 's3'
 * awsManagedAliasService('alias/aws/nope') // undefined
 * awsManagedAliasService('alias/orders')   // undefined
 */
export function awsManagedAliasService(aliasName: string): string | undefined {
  if (!aliasName.startsWith(PREFIX)) return undefined;
  const name = aliasName.slice(PREFIX.length);
  return Object.hasOwn(AWS_MANAGED_KEY_SERVICES, name) ? name : undefined;
}

/**
 * The kms:ViaService value of a request made through the service an
 * `alias/aws/<name>` alias stands for (`ec2.us-east-1.amazonaws.com` for
 * alias/aws/ebs); undefined for other aliases.
 *
 * @example
 * viaServiceOf('alias/aws/ebs', 'us-east-1') // 'ec2.us-east-1.amazonaws.com'
 * viaServiceOf('alias/orders', 'us-east-1')  // undefined
 */
export function viaServiceOf(aliasName: string, region: string): string | undefined {
  const service = awsManagedAliasService(aliasName);
  return service === undefined ? undefined : `${AWS_MANAGED_KEY_SERVICES[service]!.endpoint}.${region}.amazonaws.com`;
}

/**
 * AWS's key policy of an AWS managed key, fixed at creation: the account's
 * principals may use the key through the service (kms:ViaService and
 * kms:CallerAccount), and the account may read its metadata (Describe*,
 * Get*, List*) and revoke its grants. Nobody may manage it: no statement
 * allows DisableKey, ScheduleKeyDeletion, PutKeyPolicy, rotation settings or
 * tags, which is why AWS answers those with AccessDeniedException.
 *
 * @example
 * awsManagedKeyPolicy('111122223333', 'us-east-1', 'ebs') // {"Version":"2012-10-17","Id":"auto-ebs-2",...}
 */
export function awsManagedKeyPolicy(accountId: string, region: string, service: string): string {
  const { endpoint, title } = AWS_MANAGED_KEY_SERVICES[service]!;
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: `auto-${service}-2`,
      Statement: [
        {
          Sid: `Allow access through ${title} for all principals in the account that are authorized to use ${title}`,
          Effect: 'Allow',
          Principal: { AWS: '*' },
          Action: VIA_SERVICE_ACTIONS,
          Resource: '*',
          Condition: { StringEquals: { 'kms:CallerAccount': accountId, 'kms:ViaService': `${endpoint}.${region}.amazonaws.com` } },
        },
        {
          Sid: 'Allow direct access to key metadata to the account',
          Effect: 'Allow',
          Principal: { AWS: rootArn(accountId) },
          Action: ['kms:Describe*', 'kms:Get*', 'kms:List*', 'kms:RevokeGrant'],
          Resource: '*',
        },
      ],
    },
    null,
    2,
  );
}

/** What creating an account's managed key for one service needs. */
export interface NewAwsManagedKey {
  keyId: string;
  accountId: string;
  region: string;
  service: string;
  keyMaterialId: string;
  now: Date;
}

/**
 * The events that create an AWS managed key: KeyCreated (KeyManager AWS,
 * symmetric, AWS's fixed policy, description as AWS writes it) and
 * KeyRotationEnabled with a 365-day period, so the worker rotates it a year
 * after creation and every year after.
 *
 * @example
 * awsManagedKeyEvents({ keyId, accountId, region: 'us-east-1', service: 's3', keyMaterialId, now })
 * // [{ type: 'KeyCreated', ... keyManager: 'AWS' }, { type: 'KeyRotationEnabled', data: { rotationPeriodInDays: 365, ... } }]
 */
export function awsManagedKeyEvents(k: NewAwsManagedKey): KeyEvent[] {
  const { title } = AWS_MANAGED_KEY_SERVICES[k.service]!;
  return [
    {
      type: 'KeyCreated',
      data: {
        keyId: k.keyId,
        accountId: k.accountId,
        arn: keyArn(k.region, k.accountId, k.keyId),
        description: `Default key that protects my ${title} data when no other key is defined`,
        keyUsage: 'ENCRYPT_DECRYPT',
        keySpec: 'SYMMETRIC_DEFAULT',
        origin: 'AWS_KMS',
        keyManager: 'AWS',
        multiRegion: false,
        policy: awsManagedKeyPolicy(k.accountId, k.region, k.service),
        tags: [],
        keyMaterialId: k.keyMaterialId,
      },
    },
    {
      type: 'KeyRotationEnabled',
      data: {
        rotationPeriodInDays: AWS_MANAGED_ROTATION_PERIOD_DAYS,
        nextRotationDate: new Date(k.now.getTime() + AWS_MANAGED_ROTATION_PERIOD_DAYS * DAY_MS).toISOString(),
      },
    },
  ];
}

/** The operations that change a key's settings, which no one may make on an AWS managed key. */
const MANAGEMENT_OPERATIONS: ReadonlySet<string> = new Set([
  'UpdateKeyDescription',
  'EnableKey',
  'DisableKey',
  'TagResource',
  'UntagResource',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
  'PutKeyPolicy',
  'EnableKeyRotation',
  'DisableKeyRotation',
  'RotateKeyOnDemand',
  'GetParametersForImport',
  'ImportKeyMaterial',
  'DeleteImportedKeyMaterial',
]);

/**
 * Whether `operation` changes the settings of a key AWS manages. AWS's fixed
 * policy already refuses these to every caller (AccessDeniedException, the
 * answer callers see); this is the domain's own guard behind it, so no policy
 * evaluation bug can disable, delete or re-key an AWS managed key.
 *
 * @example
 * isAwsManagedKeyChange('DisableKey', awsManagedKey)  // true
 * isAwsManagedKeyChange('DescribeKey', awsManagedKey) // false
 */
export const isAwsManagedKeyChange = (operation: string, key: Pick<KeyState, 'keyManager'>): boolean =>
  key.keyManager === 'AWS' && MANAGEMENT_OPERATIONS.has(operation);
