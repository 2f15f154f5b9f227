-- The tamper-evident log (issue 16, DESIGN.md invariant 10): a Merkle tree
-- (RFC 9162) over every event in the followers' order, and signed checkpoints
-- of it. The sealer (src/store/log-seal.ts, run by the worker) appends each
-- event's canonical bytes (src/domain/canonical-event.ts) as a leaf.
--
-- Nothing here is trusted by a verifier: the checkpoints are also published
-- outside the database (KEYLEDGER_CHECKPOINT_DIR) and signed with a key the
-- database never sees. These tables only make proofs cheap: every perfect
-- subtree's hash is kept, so a proof is O(log n) reads, not a recomputation.

-- Where the sealer has got to in the log; one row.
CREATE TABLE log_seal_state (
  id              boolean     PRIMARY KEY DEFAULT true CHECK (id),
  tree_size       bigint      NOT NULL DEFAULT 0,
  transaction_id  xid8        NOT NULL DEFAULT '0'::xid8,
  global_position bigint      NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO log_seal_state DEFAULT VALUES;

-- Leaf i of the tree: which event, and the hash sealed (level 0 of the tree).
CREATE TABLE log_seal_leaves (
  leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
  event_id   uuid   NOT NULL UNIQUE,
  leaf_hash  bytea  NOT NULL CHECK (length(leaf_hash) = 32)
);

-- The perfect subtrees above the leaves: 2^level leaves from leaf idx * 2^level.
CREATE TABLE log_seal_nodes (
  level smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
  idx   bigint   NOT NULL CHECK (idx >= 0),
  hash  bytea    NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
);

-- Signed checkpoints, chained: each names the hash of the one before.
CREATE TABLE log_checkpoints (
  checkpoint_hash bytea       PRIMARY KEY CHECK (length(checkpoint_hash) = 32),
  tree_size       bigint      NOT NULL CHECK (tree_size >= 0),
  root_hash       bytea       NOT NULL CHECK (length(root_hash) = 32),
  signed_at       timestamptz NOT NULL,
  previous_hash   bytea       CHECK (length(previous_hash) = 32),
  key_id          text        NOT NULL,
  signature       bytea       NOT NULL,
  UNIQUE (previous_hash)
);
CREATE INDEX log_checkpoints_newest ON log_checkpoints (tree_size DESC, signed_at DESC);

REVOKE ALL ON log_seal_state, log_seal_leaves, log_seal_nodes, log_checkpoints FROM PUBLIC;
GRANT SELECT, UPDATE ON log_seal_state TO keyledger_app;
GRANT SELECT, INSERT ON log_seal_leaves, log_seal_nodes, log_checkpoints TO keyledger_app;
