-- Imported key material (issue 13, BYOK).
--
-- keys.imported_materials: the projection of a key's imported material
-- versions (KeyMaterialImported / KeyMaterialDeleted events): id, import
-- state, expiration model, ValidTo, description. Empty for keys whose
-- material keyledger generated. The worker's sweep finds expired material
-- through it.
ALTER TABLE keys ADD COLUMN imported_materials jsonb NOT NULL DEFAULT '[]';
CREATE INDEX keys_external ON keys (key_id) WHERE origin = 'EXTERNAL';

-- GetParametersForImport's wrapping keys: one RSA key pair per call, valid
-- 24 hours. The private key (PKCS#8 DER) is wrapped under the root key with
-- the key id and token id bound as AAD, like key material; it never sits here
-- in clear. Mutable, not a projection: rows are dropped once expired (by the
-- next GetParametersForImport or ImportKeyMaterial on the key) and when the
-- key is deleted.
CREATE TABLE import_parameters (
  import_token_id     uuid        PRIMARY KEY,
  key_id              uuid        NOT NULL,
  wrapping_algorithm  text        NOT NULL,
  wrapping_key_spec   text        NOT NULL,
  wrapped_private_key bytea       NOT NULL,
  valid_to            timestamptz NOT NULL,
  created_at          timestamptz NOT NULL
);
CREATE INDEX import_parameters_key ON import_parameters (key_id, valid_to);

REVOKE ALL ON import_parameters FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON import_parameters TO keyledger_app;
