import { z } from 'zod';
import { DEFAULT_SYSTEM_RUN_ALLOW, isScriptCommand, SCRIPT_COMMAND_PREFIX, SCRIPT_NAME_RE, SCRIPT_PARAM_NAME_RE, UNIT_NAME_RE } from './names.js';

// The plain names and lists live in a zod-free module (the agent's start path reads them).
export { DEFAULT_SYSTEM_RUN_ALLOW, isScriptCommand, SCRIPT_COMMAND_PREFIX, SCRIPT_NAME_RE, SCRIPT_PARAM_NAME_RE, UNIT_NAME_RE };

/**
 * Node command catalog. Each command has a params schema validated by the hub before routing
 * and again by the node before running (defense in depth), and a result schema. Params objects
 * are strict (unknown keys are refused) and every string and array is bounded.
 *
 * Script commands (`script.<name>`) are declared in each agent's config, so they are not in this
 * table: the hub checks their params only as a flat JSON object (`ScriptCommandParams`), the node
 * checks them against the script's typed declaration.
 */

const noNul = (s: string) => !s.includes('\0');

/** Absolute path, no NUL byte. The node resolves it (realpath) and applies its path policy. */
const AbsPath = z
  .string()
  .min(1)
  .max(4096)
  .refine(noNul, 'NUL byte not allowed')
  .refine((s) => s.startsWith('/'), 'path must be absolute');

const UnitName = z.string().regex(UNIT_NAME_RE, 'invalid unit name');

/** `30m`, `2h`, `7d`, `1w` (relative to now) or an ISO-8601 date/time. */
export const SINCE_RE = /^(?:\d{1,6}[smhdw]|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?)$/;
const Since = z.string().max(40).regex(SINCE_RE, 'since: relative (30m, 2h, 7d) or ISO-8601');

/** argv element: bounded, no NUL byte (execve would reject it anyway). */
const ArgvItem = z.string().max(4096).refine(noNul, 'NUL byte not allowed');

// ---------------------------------------------------------------- system

export const SystemInfoParams = z.object({}).strict();
export const SystemInfoResult = z.object({
  hostname: z.string(),
  platform: z.string(),
  release: z.string(),
  arch: z.string(),
  uptimeSeconds: z.number(),
  cpus: z.number().int(),
  cpuModel: z.string(),
  loadAverage: z.array(z.number()),
  memory: z.object({ totalBytes: z.number(), freeBytes: z.number() }),
  agent: z.object({ version: z.string(), pid: z.number().int(), rssBytes: z.number(), uptimeSeconds: z.number() }),
});

const LoadAverage = z.tuple([z.number(), z.number(), z.number()]);
const HealthState = z.enum(['healthy', 'degraded', 'unhealthy']);

export const SystemHealthParams = z.object({}).strict();
/** Seed 004 §4.1 `get_system_health`, plus the checks that decided `status`. */
export const SystemHealthResult = z.object({
  status: HealthState,
  uptimeSeconds: z.number(),
  cpu: z.object({ usagePercent: z.number(), loadAverage: LoadAverage, cores: z.number().int() }),
  memory: z.object({ totalMb: z.number(), usedMb: z.number(), availableMb: z.number(), usagePercent: z.number() }),
  /** The fullest real filesystem (usually `/`). */
  disk: z.object({ mount: z.string(), totalGb: z.number(), usedGb: z.number(), availableGb: z.number(), usagePercent: z.number() }),
  network: z.object({ interfaces: z.array(z.string()), bytesSent: z.number(), bytesReceived: z.number() }),
  checks: z.array(z.object({ name: z.string(), status: z.enum(['ok', 'warn', 'critical']), message: z.string() })),
});

export const SystemMetricsParams = z.object({}).strict();
export const SystemMetricsResult = z.object({
  timestamp: z.string(),
  cpu: z.object({ usagePercent: z.number(), cores: z.number().int(), loadAverage: LoadAverage }),
  memory: z.object({
    totalBytes: z.number(),
    usedBytes: z.number(),
    availableBytes: z.number(),
    usagePercent: z.number(),
    swapTotalBytes: z.number(),
    swapUsedBytes: z.number(),
  }),
  disks: z.array(
    z.object({
      mount: z.string(),
      device: z.string(),
      fsType: z.string(),
      totalBytes: z.number(),
      usedBytes: z.number(),
      availableBytes: z.number(),
      usagePercent: z.number(),
    }),
  ),
  network: z.array(z.object({ iface: z.string(), rxBytes: z.number(), txBytes: z.number(), rxErrors: z.number(), txErrors: z.number() })),
});

export const ProcessListParams = z
  .object({
    sort: z.enum(['cpu', 'mem']).default('cpu'),
    limit: z.number().int().min(1).max(500).default(25),
  })
  .strict();
export const ProcessListResult = z.object({
  total: z.number().int(),
  processes: z.array(
    z.object({
      pid: z.number().int(),
      ppid: z.number().int(),
      name: z.string(),
      user: z.string(),
      state: z.string(),
      cpuPercent: z.number(),
      memPercent: z.number(),
      rssBytes: z.number(),
      /** Command line, cut at 512 characters. */
      command: z.string(),
    }),
  ),
});

export const ServiceStatusParams = z
  .object({
    /** systemd units; omitted: the services the agent config watches. */
    units: z.array(UnitName).min(1).max(64).optional(),
  })
  .strict();
export const ServiceState = z.enum(['running', 'stopped', 'failed', 'activating', 'deactivating', 'not-found', 'unknown']);
export const ServiceStatusResult = z.object({
  units: z.array(
    z.object({
      name: z.string(),
      status: ServiceState,
      loadState: z.string(),
      activeState: z.string(),
      subState: z.string(),
      description: z.string(),
      mainPid: z.number().int().nullable(),
      /** When the unit entered its active state (ISO-8601), if known. */
      since: z.string().nullable(),
    }),
  ),
});

// ---------------------------------------------------------------- logs

export const LOG_SOURCES = ['journal', 'dmesg', 'file'] as const;
export const JOURNAL_PRIORITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

/** Where log lines come from: the systemd journal (optionally one unit), the kernel ring buffer, or a file the path policy allows. */
const logSourceShape = {
  source: z.enum(LOG_SOURCES).default('journal'),
  /** For `source: file`. */
  path: AbsPath.optional(),
  /** For `source: journal`. */
  unit: UnitName.optional(),
  since: Since.optional(),
};

function checkSource(p: { source: string; path?: string | undefined; unit?: string | undefined }, ctx: z.RefinementCtx): void {
  if (p.source === 'file' && !p.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'path is required for source "file"' });
  if (p.source !== 'file' && p.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'path is only valid for source "file"' });
  if (p.source !== 'journal' && p.unit) ctx.addIssue({ code: 'custom', path: ['unit'], message: 'unit is only valid for source "journal"' });
}

export const LogsCollectParams = z
  .object({
    ...logSourceShape,
    /** Newest lines returned (the tail). */
    lines: z.number().int().min(1).max(10_000).default(200),
    priority: z.enum(JOURNAL_PRIORITIES).optional(),
  })
  .strict()
  .superRefine(checkSource);
export const LogsCollectResult = z.object({
  source: z.enum(LOG_SOURCES),
  lines: z.array(z.string()),
  /** More lines matched than were returned. */
  truncated: z.boolean(),
});

export const LogsSearchParams = z
  .object({
    ...logSourceShape,
    /** A plain substring, or with `regex: true` a bounded safe regular expression (no nested quantifiers, no backreferences). */
    pattern: z.string().min(1).max(256).refine(noNul, 'NUL byte not allowed'),
    regex: z.boolean().default(false),
    ignoreCase: z.boolean().default(false),
    /** Newest lines scanned. */
    scan: z.number().int().min(1).max(100_000).default(10_000),
    /** Most matches returned (newest last). */
    limit: z.number().int().min(1).max(2000).default(200),
  })
  .strict()
  .superRefine(checkSource);
export const LogsSearchResult = z.object({
  source: z.enum(LOG_SOURCES),
  scanned: z.number().int(),
  matches: z.array(z.object({ index: z.number().int(), line: z.string() })),
  truncated: z.boolean(),
});

export const LogsAnalyzeParams = z
  .object({
    ...logSourceShape,
    /** Newest lines analysed. */
    lines: z.number().int().min(1).max(100_000).default(5000),
  })
  .strict()
  .superRefine(checkSource);

export const LOG_SEVERITIES = ['info', 'warning', 'error', 'critical'] as const;

/**
 * A fix the analysis proposes, as a catalog command invocation. It never runs by itself: the hub
 * runs it only as a separate command, after an operator approves it.
 */
export const ProposedFix = z.object({
  /** `fix` changes the machine; `diagnose` is a read-only next step that narrows the cause down. */
  kind: z.enum(['fix', 'diagnose']),
  command: z.string(),
  params: z.record(z.string(), z.unknown()),
  description: z.string(),
  /** Whether this node's local policy would accept the command today. */
  allowedByLocalPolicy: z.boolean(),
});
export const LogFinding = z.object({
  rule: z.string(),
  category: z.string(),
  severity: z.enum(LOG_SEVERITIES),
  suggestion: z.string(),
  count: z.number().int(),
  /** Up to 3 matching lines (the first ones), each cut at 512 characters. */
  samples: z.array(z.string()),
  proposedFix: ProposedFix.nullable(),
});
export const LogsAnalyzeResult = z.object({
  source: z.enum(LOG_SOURCES),
  scanned: z.number().int(),
  findings: z.array(LogFinding),
  summary: z.object({
    total: z.number().int(),
    bySeverity: z.record(z.string(), z.number().int()),
    byCategory: z.record(z.string(), z.number().int()),
  }),
});

// ---------------------------------------------------------------- files

const FileEncoding = z.enum(['utf8', 'base64']);

export const FileReadParams = z
  .object({
    path: AbsPath,
    encoding: FileEncoding.default('utf8'),
    offset: z.number().int().min(0).default(0),
    /** Bytes to read; capped by the node's `files.max_read_bytes`. */
    length: z
      .number()
      .int()
      .min(1)
      .max(64 * 1024 * 1024)
      .optional(),
  })
  .strict();
export const FileReadResult = z.object({
  path: z.string(),
  /** The path after resolving symlinks and `..`. */
  realPath: z.string(),
  size: z.number().int(),
  offset: z.number().int(),
  bytes: z.number().int(),
  encoding: FileEncoding,
  content: z.string(),
  /** The file continues beyond what was returned. */
  truncated: z.boolean(),
  mtime: z.string(),
});

export const FileWriteParams = z
  .object({
    path: AbsPath,
    content: z.string().max(48 * 1024 * 1024),
    encoding: FileEncoding.default('utf8'),
    /** `create` refuses to replace an existing file. */
    mode: z.enum(['overwrite', 'create']).default('overwrite'),
    /** Octal permissions of the written file, e.g. `0644`; default: keep the old file's, else 0644. */
    fileMode: z
      .string()
      .regex(/^0?[0-7]{3}$/, 'octal mode like 0644')
      .optional(),
  })
  .strict();
export const FileWriteResult = z.object({
  path: z.string(),
  realPath: z.string(),
  bytes: z.number().int(),
  sha256: z.string(),
  created: z.boolean(),
});

export const FileListParams = z
  .object({
    path: AbsPath,
    limit: z.number().int().min(1).max(5000).default(500),
    hidden: z.boolean().default(true),
  })
  .strict();
export const FileListResult = z.object({
  path: z.string(),
  realPath: z.string(),
  entries: z.array(
    z.object({
      name: z.string(),
      type: z.enum(['file', 'dir', 'symlink', 'other']),
      size: z.number().int(),
      mode: z.string(),
      mtime: z.string(),
    }),
  ),
  total: z.number().int(),
  truncated: z.boolean(),
});

// ---------------------------------------------------------------- containers

/** Container id (hex prefix) or name. */
const ContainerRef = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/, 'container id or name');
/** `[registry/]repo[:tag][@sha256:digest]`, lowercase repo. */
export const IMAGE_REF_RE =
  /^(?:[a-zA-Z0-9.-]+(?::\d{1,5})?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const EnvKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'environment variable name');
const LabelKey = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.\-/]{0,127}$/, 'label key');

const bounded = <T extends z.ZodType>(rec: z.ZodRecord<z.ZodString, T>, max: number) =>
  rec.refine((r) => Object.keys(r).length <= max, `at most ${max} entries`);

export const ContainerListParams = z
  .object({
    /** Include stopped containers. */
    all: z.boolean().default(true),
    limit: z.number().int().min(1).max(1000).default(200),
  })
  .strict();
export const ContainerSummary = z.object({
  id: z.string(),
  name: z.string(),
  image: z.string(),
  state: z.string(),
  status: z.string(),
  created: z.string(),
  labels: z.record(z.string(), z.string()),
});
export const ContainerListResult = z.object({
  containers: z.array(ContainerSummary),
  total: z.number().int(),
  running: z.number().int(),
  stopped: z.number().int(),
});

export const ContainerSpawnParams = z
  .object({
    image: z.string().max(512).regex(IMAGE_REF_RE, 'image reference'),
    name: ContainerRef.optional(),
    /** Command (argv) for the container; default: the image's. */
    cmd: z.array(ArgvItem).min(1).max(64).optional(),
    env: bounded(z.record(EnvKey, z.string().max(4096).refine(noNul, 'NUL byte not allowed')), 64).optional(),
    labels: bounded(z.record(LabelKey, z.string().max(256)), 32).optional(),
    ports: z
      .array(
        z
          .object({
            container: z.number().int().min(1).max(65535),
            host: z.number().int().min(1).max(65535).optional(),
            protocol: z.enum(['tcp', 'udp']).default('tcp'),
          })
          .strict(),
      )
      .max(16)
      .optional(),
    memoryMb: z.number().int().min(6).max(1_048_576).optional(),
    cpus: z.number().min(0.01).max(256).optional(),
    autoRemove: z.boolean().default(false),
  })
  .strict();
export const ContainerSpawnResult = z.object({ id: z.string(), name: z.string(), image: z.string(), state: z.string() });

export const ContainerStopParams = z
  .object({
    id: ContainerRef,
    /** Seconds between SIGTERM and SIGKILL. */
    timeoutSeconds: z.number().int().min(0).max(300).default(10),
    remove: z.boolean().default(false),
  })
  .strict();
export const ContainerStopResult = z.object({ id: z.string(), wasRunning: z.boolean(), stopped: z.boolean(), removed: z.boolean() });

// ---------------------------------------------------------------- power

export const PowerParams = z
  .object({
    action: z.enum(['reboot', 'shutdown']),
    /** Seconds to wait before acting (the result is sent first). */
    delay_s: z.number().int().min(0).max(86_400).default(0),
    reason: z.string().max(256).optional(),
  })
  .strict();
export const PowerResult = z.object({
  action: z.enum(['reboot', 'shutdown']),
  scheduledAt: z.string(),
  /** The argv that will run (never through a shell). */
  argv: z.array(z.string()),
});

// ---------------------------------------------------------------- system.run

export const SystemRunParams = z
  .object({
    /** Program and arguments. Never passed through a shell. */
    argv: z.array(ArgvItem).min(1).max(256),
    cwd: z.string().min(1).max(4096).optional(),
    timeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    /** Optional stdin for the process. */
    stdin: z
      .string()
      .max(1024 * 1024)
      .optional(),
  })
  .strict()
  .refine((p) => (p.argv[0] ?? '').length > 0, { message: 'argv[0] must not be empty', path: ['argv', 0] });

export const SystemRunResult = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  durationMs: z.number(),
});

// ---------------------------------------------------------------- script commands

/** What the hub can check about `script.*` params without the node's declaration: a flat object of scalars. */
export const ScriptCommandParams = z
  .record(z.string().regex(SCRIPT_PARAM_NAME_RE, 'param name'), z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]))
  .refine((r) => Object.keys(r).length <= 64, 'at most 64 params');

/** Result of a script command: the `data` of its `{"ok":true,"data":{...}}` line, and its output. */
export const ScriptResult = z.object({
  data: z.record(z.string(), z.unknown()).nullable(),
  exitCode: z.number().int().nullable(),
  durationMs: z.number(),
  /** stdout without the final JSON result line, capped. */
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
});

// ---------------------------------------------------------------- catalog

/**
 * A task of the hub's task spawner, run on this node. The provider keys travel only inside this
 * signed invoke and live only in the child's environment.
 */
export const TaskRunParams = z
  .object({
    task_id: z.string().min(1).max(64),
    argv: z.array(ArgvItem).min(1).max(64),
    /** The child's whole environment besides PATH/HOME/LANG: the type's variables and keys. */
    env: z
      .record(z.string().regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'environment names: A-Z, 0-9, _'), z.string().max(16 * 1024))
      .refine((e) => Object.keys(e).length <= 64, 'at most 64 variables'),
    timeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(24 * 3_600_000),
  })
  .strict();
export const TaskRunResult = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean(),
  timedOut: z.boolean(),
  durationMs: z.number(),
});
export type TaskRunParams = z.infer<typeof TaskRunParams>;
export type TaskRunResult = z.infer<typeof TaskRunResult>;

export const NODE_COMMANDS = {
  'system.info': { params: SystemInfoParams, result: SystemInfoResult, mutates: false, description: 'OS, CPU, memory and agent facts' },
  'system.health': {
    params: SystemHealthParams,
    result: SystemHealthResult,
    mutates: false,
    description: 'Health verdict with CPU, load, memory, fullest disk and network totals',
  },
  'system.metrics': {
    params: SystemMetricsParams,
    result: SystemMetricsResult,
    mutates: false,
    description: 'CPU %, load, memory, disk usage per mount, network bytes per interface',
  },
  'process.list': { params: ProcessListParams, result: ProcessListResult, mutates: false, description: 'Top processes by CPU or memory' },
  'service.status': { params: ServiceStatusParams, result: ServiceStatusResult, mutates: false, description: 'State of systemd units' },
  'logs.collect': {
    params: LogsCollectParams,
    result: LogsCollectResult,
    mutates: false,
    description: 'Newest lines from the journal, dmesg or an allowed file',
  },
  'logs.search': { params: LogsSearchParams, result: LogsSearchResult, mutates: false, description: 'Substring or safe-regex search over a log source' },
  'logs.analyze': {
    params: LogsAnalyzeParams,
    result: LogsAnalyzeResult,
    mutates: false,
    description: 'Known error patterns → category, severity, suggestion and a proposed fix (needs approval to run)',
  },
  'file.read': { params: FileReadParams, result: FileReadResult, mutates: false, description: 'Read a file inside the allowed paths (size-capped)' },
  'file.write': { params: FileWriteParams, result: FileWriteResult, mutates: true, description: 'Write a file inside the allowed paths, atomically' },
  'file.list': { params: FileListParams, result: FileListResult, mutates: false, description: 'List a directory inside the allowed paths' },
  'container.list': { params: ContainerListParams, result: ContainerListResult, mutates: false, description: 'Docker containers (Engine API over its socket)' },
  'container.spawn': {
    params: ContainerSpawnParams,
    result: ContainerSpawnResult,
    mutates: true,
    description: 'Create and start a container (never privileged)',
  },
  'container.stop': { params: ContainerStopParams, result: ContainerStopResult, mutates: true, description: 'Stop (and optionally remove) a container' },
  power: { params: PowerParams, result: PowerResult, mutates: true, description: 'Reboot or shut down the machine (always needs approval)' },
  'system.run': {
    params: SystemRunParams,
    result: SystemRunResult,
    mutates: true,
    description: 'Run an allowlisted program with an argv array (no shell), capped output, timeout',
  },
  'task.run': {
    params: TaskRunParams,
    result: TaskRunResult,
    mutates: true,
    description: 'Run an AI task agent CLI for the hub task spawner, with the provider keys it needs in its environment only',
  },
} as const;

export type NodeCommandName = keyof typeof NODE_COMMANDS;
export type NodeCommandParams<C extends NodeCommandName> = z.output<(typeof NODE_COMMANDS)[C]['params']>;
export type NodeCommandResult<C extends NodeCommandName> = z.output<(typeof NODE_COMMANDS)[C]['result']>;

export type SystemInfoResult = z.infer<typeof SystemInfoResult>;
export type SystemHealthResult = z.infer<typeof SystemHealthResult>;
export type SystemMetricsResult = z.infer<typeof SystemMetricsResult>;
export type ProcessListParams = z.infer<typeof ProcessListParams>;
export type ProcessListResult = z.infer<typeof ProcessListResult>;
export type ServiceStatusParams = z.infer<typeof ServiceStatusParams>;
export type ServiceStatusResult = z.infer<typeof ServiceStatusResult>;
export type ServiceState = z.infer<typeof ServiceState>;
export type LogsCollectParams = z.infer<typeof LogsCollectParams>;
export type LogsCollectResult = z.infer<typeof LogsCollectResult>;
export type LogsSearchParams = z.infer<typeof LogsSearchParams>;
export type LogsSearchResult = z.infer<typeof LogsSearchResult>;
export type LogsAnalyzeParams = z.infer<typeof LogsAnalyzeParams>;
export type LogsAnalyzeResult = z.infer<typeof LogsAnalyzeResult>;
export type LogFinding = z.infer<typeof LogFinding>;
export type ProposedFix = z.infer<typeof ProposedFix>;
export type FileReadParams = z.infer<typeof FileReadParams>;
export type FileReadResult = z.infer<typeof FileReadResult>;
export type FileWriteParams = z.infer<typeof FileWriteParams>;
export type FileWriteResult = z.infer<typeof FileWriteResult>;
export type FileListParams = z.infer<typeof FileListParams>;
export type FileListResult = z.infer<typeof FileListResult>;
export type ContainerListParams = z.infer<typeof ContainerListParams>;
export type ContainerListResult = z.infer<typeof ContainerListResult>;
export type ContainerSpawnParams = z.infer<typeof ContainerSpawnParams>;
export type ContainerSpawnResult = z.infer<typeof ContainerSpawnResult>;
export type ContainerStopParams = z.infer<typeof ContainerStopParams>;
export type ContainerStopResult = z.infer<typeof ContainerStopResult>;
export type PowerParams = z.infer<typeof PowerParams>;
export type PowerResult = z.infer<typeof PowerResult>;
export type SystemRunParams = z.infer<typeof SystemRunParams>;
export type SystemRunResult = z.infer<typeof SystemRunResult>;
export type ScriptCommandParams = z.infer<typeof ScriptCommandParams>;
export type ScriptResult = z.infer<typeof ScriptResult>;

export function isNodeCommand(name: string): name is NodeCommandName {
  return Object.hasOwn(NODE_COMMANDS, name);
}

// ---------------------------------------------------------------- status report

/**
 * Agent → hub every `status_interval_seconds` (default 30) as the `node.status` request
 * (seed 004 "Agent → Backend"). `health` describes the agent process, `system` the machine.
 */
export const StatusReport = z
  .object({
    timestamp: z.string().max(40),
    health: z
      .object({
        status: HealthState,
        uptime_seconds: z.number().min(0),
        memory_usage_mb: z.number().min(0),
        cpu_usage_percent: z.number().min(0),
      })
      .strict(),
    system: z
      .object({
        cpu_percent: z.number().min(0).max(100),
        memory_percent: z.number().min(0).max(100),
        disk_usage_percent: z.number().min(0).max(100),
        load_average: z.array(z.number().min(0)).max(3),
      })
      .strict(),
    /** Watched services (agent config `services.watch`) → state. */
    services: z
      .record(z.string().max(256), ServiceState)
      .refine((r) => Object.keys(r).length <= 64, 'at most 64 services')
      .default({}),
    /** null when no container engine is reachable. */
    containers: z
      .object({ total: z.number().int().min(0), running: z.number().int().min(0), stopped: z.number().int().min(0) })
      .strict()
      .nullable(),
    sessions: z.object({ active: z.number().int().min(0), total_today: z.number().int().min(0) }).strict(),
  })
  .strict();
export type StatusReport = z.infer<typeof StatusReport>;
