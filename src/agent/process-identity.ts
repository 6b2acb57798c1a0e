/**
 * One process, named for good. A pid alone does not name a process: once it
 * exits, the kernel hands its pid to the next fork, and a signal meant for
 * `hush run` reaches a stranger. The pid together with the process's start
 * time (field 22 of /proc/<pid>/stat, clock ticks after boot) does: a pid is
 * reused, a (pid, start time) pair is not.
 *
 * A pidfd would close the last gap too (the microseconds between checking and
 * signalling), but Node has no pidfd_open/pidfd_send_signal; this check runs
 * right before each signal, and the pid would have to be freed and reused by
 * a fresh fork inside that window.
 */
import { readFileSync } from 'node:fs';

/** Position of starttime among the fields that follow the command name's closing parenthesis (field 3 onwards). */
const START_TIME_AFTER_COMM = 22 - 3;

/**
 * When the process `pid` started (clock ticks after boot), or undefined when
 * no such process is running. A zombie has exited, so it counts as gone.
 */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 is the command name in parentheses, which may itself hold spaces and ')': count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === 'Z' || state === 'X') return undefined;
  const startTime = Number(fields[START_TIME_AFTER_COMM]);
  return Number.isSafeInteger(startTime) ? startTime : undefined;
}

/** Whether `pid` still names the process that started at `startTime`. */
export function isSameProcess(pid: number, startTime: number): boolean {
  return processStartTime(pid) === startTime;
}
