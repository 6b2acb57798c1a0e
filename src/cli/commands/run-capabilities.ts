/**
 * The capabilities `hush run` leaves a command, as `docker run` does: Docker's
 * default set, changed by --cap-add / --cap-drop with Docker's rules (names
 * case-insensitive, with or without CAP_, and ALL). Root inside keeps
 * DAC_OVERRIDE, so it reads a uid=999 mode=0400 secret as in Docker; it loses
 * SYS_ADMIN (no unmounting /run/secrets, no mounting a fresh /proc) and
 * SYS_PTRACE and the rest.
 */
import { InvalidArgumentError } from 'commander';

/** Every capability util-linux's setpriv knows (`setpriv --list-caps`), in kernel bit order (0..40). */
const KNOWN = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** Docker's default set (moby oci/caps/defaults.go): CapEff 00000000a80425fb for root in a container. */
export const DOCKER_DEFAULT_CAPS: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

const ALL = 'ALL';

/** Parses one --cap-add/--cap-drop value (commander collects them): "net_admin", "CAP_NET_ADMIN" and "all" all work. */
export function collectCapability(value: string, previous: string[] = []): string[] {
  const name = value.toUpperCase().replace(/^CAP_/, '');
  if (name !== ALL && !(KNOWN as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`unknown capability "${value}" (e.g. NET_ADMIN, SYS_PTRACE, or ALL; see capabilities(7))`);
  }
  return [...previous, name];
}

/** The set the command keeps, by Docker's rules: add ALL wins (minus drops), then drop ALL (keeping only adds), else default - drops + adds. */
export function effectiveCapabilities(add: string[], drop: string[]): string[] {
  let kept: string[];
  if (add.includes(ALL)) kept = KNOWN.filter((c) => !drop.includes(c));
  else if (drop.includes(ALL)) kept = add;
  else kept = [...DOCKER_DEFAULT_CAPS.filter((c) => !drop.includes(c)), ...add];
  return KNOWN.filter((c) => kept.includes(c)); // deduplicated, in bit order
}

/**
 * setpriv arguments that leave only `caps`: the bounding set limits what any
 * exec can ever hold (root's permitted and effective sets become exactly
 * these; another uid gets none, as in Docker), and the inheritable and
 * ambient sets are emptied so nothing passes around the bounding set.
 */
export function capabilityArgs(caps: string[]): string[] {
  const listed = caps.map((c) => `,+${c.toLowerCase()}`).join('');
  return ['--inh-caps', '-all', '--ambient-caps', '-all', '--bounding-set', `-all${listed}`];
}
