/** Who is calling: resolved from credentials by the transport, never from client-supplied fields. */
export interface Caller {
  accountId: string;
  principalArn: string;
  principalType: 'root' | 'user' | 'role';
  name: string;
  /** The access key that authenticated the request. */
  accessKeyId: string;
  tags: Record<string, string>;
  /** The identity policies attached to the principal, read with its credentials. */
  identityPolicies: { name: string; document: string }[];
  /**
   * The version of the principal's fence the credentials were read at
   * (src/service/credentials.ts), set when they came from the process's cache:
   * the request is then checked against it before it is answered.
   */
  credentialsFence?: bigint;
}

/** What the service knows of one request, besides its parameters. */
export interface RequestContext {
  requestId: string;
  caller: Caller;
  sourceIp: string | null;
  userAgent: string | null;
}

/** The identity of actions keyledger takes itself: an operator at the CLI, or the worker. */
export interface OperatorContext {
  requestId: string;
  /** e.g. `keyledger-cli`, `keyledger-worker` */
  invokedBy: string;
  /** Operator (default) for the CLI; AWSService for the worker, as CloudTrail shows KMS's own actions. */
  identityType?: 'Operator' | 'AWSService';
}
