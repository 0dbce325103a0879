export { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export {
  HiveClient,
  type HiveClientOptions,
  type HubTlsOptions,
  INVOKE_SKEW_MS,
  type RequestContext,
  type RequestHandler,
  type StreamOptions,
  type TokenStoreLike,
} from './client.js';
export {
  type DeviceIdentity,
  deviceIdFromPublicKey,
  generateIdentity,
  loadOrCreateIdentity,
  publicKeyObject,
  signConnect,
  TokenStore,
  verifySignature,
} from './identity.js';
export { type MerkleStep, merkleLeaf, merkleRootB64u, merkleRootOf, merkleTree } from './merkle.js';
/** `Frame.parse` and `InvokeParams.safeParse` of the protocol without zod (a differential test pins them to the schemas). */
export { parseFrame, parseInvoke } from './protocol-lite.js';
export { type HubTrust, normalizeFingerprint, sameFingerprint, secureConnector, type TlsSeen } from './tls.js';
