/**
 * Runs a mount tool (fusermount, umount) without a shell and without blocking
 * the event loop: the loop must stay free, because a tool that touches one of
 * our own mounts waits on requests only this process can answer.
 */
import { execFile } from 'node:child_process';

export interface RunResult {
  ok: boolean;
  stderr: string;
}

/** Never rejects; a tool that hangs is SIGKILLed after `timeoutMs`. */
export function run(file: string, args: string[], timeoutMs = 5000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      resolve({ ok: err === null, stderr: String(stderr).trim() || (err ? err.message : '') });
    });
  });
}
