export { CLOSE_CODES, type CloseName, closeNameFor } from './close-codes.js';
export {
  isNodeCommand,
  NODE_COMMANDS,
  type NodeCommandName,
  SystemInfoParams,
  SystemInfoResult,
  SystemRunParams,
  SystemRunResult,
} from './commands.js';
export {
  ERROR_CODE_LIST,
  ERROR_CODES,
  type ErrorCode,
  HiveError,
  httpStatusFor,
  isErrorCode,
  RECOVERY_ACTIONS,
  type RecoveryAction,
  type RecoveryHint,
  type WireError,
} from './errors.js';
export {
  ChallengePayload,
  ConnectParams,
  type ConnectParamsInput,
  connectSigningPayload,
  EventFrame,
  Frame,
  FrameId,
  HelloResult,
  OPERATOR_SCOPES,
  PairingPendingPayload,
  RequestFrame,
  ResponseFrame,
  ROLES,
  type Role,
  type Scope,
  WireErrorSchema,
} from './frames.js';
export { InvokeParams } from './invoke.js';
export { DEFAULT_LIMITS, type Limits } from './limits.js';
export {
  AuditQueryParams,
  EVENTS,
  type EventName,
  ExecParams,
  isMethod,
  METHODS,
  type MethodName,
  type MethodSpec,
  PairingResolveParams,
  SatellitesListParams,
} from './methods.js';
export { negotiateVersion, PROTOCOL_MAX, PROTOCOL_MIN, PROTOCOL_VERSION, type VersionRange } from './version.js';
