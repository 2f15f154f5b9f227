/** The tamper-evident log: signed checkpoints, inclusion and consistency proofs, and the checkpoint stream (see src/service/checkpoints.ts). */
import type { CheckpointJson } from '../../domain/checkpoint.ts';
import type { CheckpointSelector, ConsistencyProofView, InclusionProofView } from '../../service/checkpoints.ts';
import { AuditEvent } from './audit.ts';
import { builder } from './builder.ts';

const Checkpoint = builder.objectRef<CheckpointJson>('Checkpoint').implement({
  description:
    "A signed checkpoint of the log's Merkle tree (RFC 9162 hashing over every event's canonical bytes). The Ed25519 signature " +
    '(public key: `keyledger checkpoint public-key`) covers the UTF-8 text ' +
    '"keyledger checkpoint v1\\n<treeSize>\\n<rootHash>\\n<signedAt>\\n<previousHash or ->\\n<keyId>\\n"; ' +
    'checkpointHash is SHA-256 of that text followed by the signature, and the next checkpoint names it as previousHash.',
  fields: (t) => ({
    treeSize: t.exposeString('treeSize', { description: 'Events sealed: leaves 0..treeSize-1, decimal.' }),
    rootHash: t.exposeString('rootHash', { description: 'The tree root, base64.' }),
    signedAt: t.field({ type: 'DateTime', resolve: (c) => new Date(c.signedAt) }),
    previousHash: t.exposeString('previousHash', { nullable: true, description: "The previous checkpoint's checkpointHash, base64; null for the first." }),
    keyId: t.exposeString('keyId', { description: "The first 16 bytes of SHA-256 of the public key's SPKI DER, hex." }),
    signature: t.exposeString('signature', { description: 'Ed25519, base64.' }),
    checkpointHash: t.exposeString('checkpointHash', {
      description: 'SHA-256(signed text || signature), base64: how proofs and witnesses name this checkpoint.',
    }),
  }),
});

const CheckpointSelectorInput = builder.inputType('CheckpointSelector', {
  description: 'A checkpoint by its checkpointHash (base64 as published, or hex) or by tree size; one of the two.',
  fields: (t) => ({ hash: t.string(), treeSize: t.string() }),
});

const InclusionProof = builder.objectRef<InclusionProofView>('InclusionProof').implement({
  description:
    'RFC 9162 (2.1.3) inclusion proof of one record: SHA-256(0x00 || canonicalEvent) is leafHash, and leafHash with auditPath at leafIndex ' +
    "gives the checkpoint's rootHash in a tree of treeSize leaves.",
  fields: (t) => ({
    leafIndex: t.exposeString('leafIndex', { description: "The record's place in the log, decimal." }),
    treeSize: t.exposeString('treeSize'),
    leafHash: t.exposeString('leafHash', { description: 'The leaf the sealer stored, base64.' }),
    canonicalEvent: t.exposeString('canonicalEvent', {
      nullable: true,
      description:
        "The record's canonical event text as the database holds it now (it hashes to " +
        'leafHash unless it was altered); null when your view of the record hides part of it.',
    }),
    auditPath: t.exposeStringList('auditPath', { description: 'Base64 hashes, the sibling nearest the leaf first.' }),
    checkpoint: t.expose('checkpoint', { type: Checkpoint }),
  }),
});

const ConsistencyProof = builder.objectRef<ConsistencyProofView>('ConsistencyProof').implement({
  description: "RFC 9162 (2.1.4) consistency proof: the tree of from's treeSize leaves is a prefix of the tree of to's.",
  fields: (t) => ({
    from: t.expose('from', { type: Checkpoint }),
    to: t.expose('to', { type: Checkpoint }),
    proof: t.exposeStringList('proof', { description: 'Base64 hashes.' }),
  }),
});

/** GraphQL leaves omitted input fields undefined: the service wants null or a value. */
const selectorOf = (input: { hash?: string | null; treeSize?: string | null } | null | undefined): CheckpointSelector => ({
  hash: input?.hash ?? null,
  treeSize: input?.treeSize ?? null,
});

builder.objectField(AuditEvent, 'proof', (t) =>
  t.field({
    type: InclusionProof,
    nullable: true,
    description:
      'The inclusion proof of this record against a signed checkpoint (the newest when none is named); null when that checkpoint does not cover it yet ' +
      '(the sealer seals within seconds). A checkpoint this log never signed is NotFoundException. Each proof is a recorded request (GetInclusionProof).',
    args: { checkpoint: t.arg({ type: CheckpointSelectorInput }) },
    resolve: (event, args, ctx, info) =>
      ctx.checkpoints.inclusionProof(ctx.newRequest(info), { eventId: event.eventId, checkpoint: selectorOf(args.checkpoint) }),
  }),
);

builder.queryField('checkpoint', (t) =>
  t.field({
    type: Checkpoint,
    nullable: true,
    description: 'A signed checkpoint by hash or tree size (NotFoundException when there is none), else the newest (null before the first).',
    args: { hash: t.arg.string(), treeSize: t.arg.string() },
    resolve: (_root, args, ctx, info) => ctx.checkpoints.checkpoint(ctx.newRequest(info), selectorOf(args)),
  }),
);

builder.queryField('checkpoints', (t) =>
  t.field({
    type: [Checkpoint],
    description: 'Signed checkpoints of tree size above afterTreeSize, oldest first (the chain, for a witness catching up).',
    args: { afterTreeSize: t.arg.string(), first: t.arg.int({ description: '1-1000, default 100.' }) },
    resolve: (_root, args, ctx, info) =>
      ctx.checkpoints.checkpoints(ctx.newRequest(info), { afterTreeSize: args.afterTreeSize ?? null, first: args.first ?? null }),
  }),
);

builder.queryField('consistencyProof', (t) =>
  t.field({
    type: ConsistencyProof,
    description: 'Proves that the log only grew between two signed checkpoints (from the smaller). A checkpoint this log never signed is NotFoundException.',
    args: { from: t.arg({ type: CheckpointSelectorInput, required: true }), to: t.arg({ type: CheckpointSelectorInput, required: true }) },
    resolve: (_root, args, ctx, info) => ctx.checkpoints.consistencyProof(ctx.newRequest(info), { from: selectorOf(args.from), to: selectorOf(args.to) }),
  }),
);

builder.subscriptionField('checkpoints', (t) =>
  t.field({
    type: Checkpoint,
    description:
      'A live stream (SSE) of checkpoints as the sealer signs them, oldest first: those above afterTreeSize (resume with the last treeSize received), ' +
      'else those signed from now on. Starting it is one recorded request.',
    args: { afterTreeSize: t.arg.string() },
    subscribe: (_root, args, ctx, info) => ctx.checkpoints.followCheckpoints(ctx.newRequest(info), { afterTreeSize: args.afterTreeSize ?? null }),
    resolve: (c) => c,
  }),
);
