/**
 * Rotation into a running Docker container (issue 11): from the rotate
 * call's 201 until (a) the new value is readable in the container's mount
 * and (b) the container's reload signal (label hush.reload-signal=SIGHUP)
 * has run its trap. A private dockerd (test/helpers/dockerd.ts: its own
 * socket, data root, no networking), `hush up` serving the volume plugin,
 * one container whose trap prints the value it reads.
 *
 * (a) is read by this process from the container's FUSE mount (never by the
 * agent that serves it). (b) is when the trap's line reaches this process
 * through `docker logs -f`, so it includes dockerd's signal delivery and log
 * relay; their floor is measured in the same run by sending the same signal
 * straight to dockerd (`POST /containers/ID/kill`, as `docker kill` does)
 * and timing the same trap line.
 *
 * Run alone: `npx tsx bench/docker-reload.ts` (HUSH_BENCH_ROTATIONS, default 30).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { startDockerd, stopDockerSuite, TEST_IMAGE, type Dockerd } from '../test/helpers/dockerd.js';
import { call, closeClients } from '../test/helpers/http.js';
import { hush, startHush, type Running } from '../test/helpers/hush-process.js';
import { until } from '../test/helpers/until.js';
import { envInt } from './lib/env.js';
import { makeScratchDir } from './lib/tmp.js';

const ROTATIONS = envInt('HUSH_BENCH_ROTATIONS', 30);

interface Stats {
  p50: number;
  p99: number;
  max: number;
}

function stats(ms: number[]): Stats {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! };
}

const row = (what: string, s: Stats) => `| ${what} | ${s.p50.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.max.toFixed(1)} |`;

export async function runDockerReloadBench(): Promise<{ markdown: string }> {
  const scratch = await makeScratchDir('docker-reload');
  const dir = scratch.path;
  const plugin = `hush-bench-${randomBytes(3).toString('hex')}`;
  const env = { HUSH_HOME: dir, HUSH_HOST: '', HUSH_AGENT_SOCKET: '' };
  const agentSocket = join(dir, 'agent.sock');
  const adminSocket = join(dir, 'admin.sock');
  let dockerd: Dockerd | undefined;
  let up: Running | undefined;
  let logs: ReturnType<typeof spawn> | undefined;
  try {
    process.stderr.write('docker-reload: starting a private dockerd and hush up…\n');
    dockerd = await startDockerd();
    up = startHush(['up', '--home', dir, '--socket', adminSocket, '--agent-socket', agentSocket, '--mounts', join(dir, 'mounts'), '--listen', '127.0.0.1:0', '--admin', '', '--docker-plugin', plugin, '--docker-host', dockerd.host], env);
    await until(() => up!.stdout().toString().includes('hush is up'), 'hush up to print its quickstart', 60_000);
    const cli = (args: string[], input?: string) => {
      const r = hush(args, { env: { ...env, HUSH_HOST: `unix://${adminSocket}` }, input });
      if (r.status !== 0) throw new Error(`hush ${args.join(' ')}: ${r.stderr}`);
    };
    cli(['secret', 'create', 'api_key', '-'], 'v0');
    cli(['service', 'create', 'app', '--secret', 'api_key,target=key']);

    // `sleep & wait` so the trap runs at once, not after the sleep.
    const script = 'trap \'echo "R $(cat /run/secrets/key)"\' HUP; while true; do sleep 1 & wait; done';
    const started = dockerd.docker(['run', '-d', '--name', 'reloader', '--network', 'none', '--label', 'hush.reload-signal=SIGHUP', '--mount', `type=volume,volume-driver=${plugin},source=app,target=/run/secrets,readonly`, TEST_IMAGE, 'sh', '-c', script]);
    if (started.status !== 0) throw new Error(`docker run: ${started.stderr}`);
    const [container] = (await call<{ id: string; mount: string; runtime?: object }[]>(agentSocket, 'GET', '/v1/containers')).body;
    if (!container) throw new Error('the container did not register with the agent');
    await until(async () => (await call<{ runtime?: object }[]>(agentSocket, 'GET', '/v1/containers')).body[0]?.runtime !== undefined, 'the agent to identify the container through dockerd (its reload label)', 30_000);

    const reloaded = new Map<string, number>();
    const traps: number[] = [];
    logs = spawn('docker', ['logs', '-f', '--since', '0s', 'reloader'], { env: { ...process.env, ...dockerd.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: logs.stdout! }).on('line', (line) => {
      const now = performance.now();
      if (!line.startsWith('R ')) return;
      reloaded.set(line.slice(2), now);
      traps.push(now);
    });

    const visible: number[] = [];
    const signalled: number[] = [];
    for (let i = 1; i <= ROTATIONS; i++) {
      const value = `v${i}-${randomBytes(8).toString('hex')}`;
      const reply = await call(adminSocket, 'POST', '/v1/secrets/api_key/rotate', { data: Buffer.from(value).toString('base64') });
      const t0 = performance.now();
      if (reply.status !== 201) throw new Error(`rotate: ${reply.status} ${reply.text}`);
      let seen = 0;
      while (seen === 0) {
        if ((await readFile(join(container.mount, 'key'), 'utf8')) === value) seen = performance.now();
        else if (performance.now() - t0 > 10_000) throw new Error(`rotation ${i} not visible in the mount after 10 s`);
      }
      visible.push(seen - t0);
      await until(() => reloaded.has(value), `the reload trap of rotation ${i}`, 10_000, 1);
      signalled.push(reloaded.get(value)! - t0);
      await new Promise((r) => setTimeout(r, 150));
    }
    // The floor: the same signal sent straight to dockerd, timed to the same trap line.
    const direct: number[] = [];
    const dockerSocket = dockerd.host.replace(/^unix:\/\//, '');
    for (let i = 0; i < ROTATIONS; i++) {
      const before = traps.length;
      const t0 = performance.now();
      const kill = await call(dockerSocket, 'POST', '/containers/reloader/kill?signal=SIGHUP');
      if (kill.status !== 204) throw new Error(`docker kill: ${kill.status} ${kill.text}`);
      await until(() => traps.length > before, 'the trap of a direct docker kill', 10_000, 1);
      direct.push(traps[before]! - t0);
      await new Promise((r) => setTimeout(r, 150));
    }
    const v = stats(visible);
    const s = stats(signalled);
    const r = stats(direct);
    return {
      markdown: [
        '## Rotation into a running Docker container (`bench/docker-reload.ts`)',
        '',
        `A private dockerd, \`hush up\` serving the volume plugin, one busybox container with label \`hush.reload-signal=SIGHUP\` whose trap prints the value it reads; ${ROTATIONS} rotations of a small secret through the admin socket, 150 ms apart. Times in ms from the rotate call's 201.`,
        '',
        '| from the 201 until | p50 ms | p99 ms | max ms |',
        '|---|--:|--:|--:|',
        row('the new value is readable in the container\'s mount (read by this process)', v),
        row('the container\'s SIGHUP trap has read it (its line through `docker logs -f`)', s),
        row('baseline, same run: SIGHUP sent straight to dockerd (`docker kill -s HUP`) until the same trap line (from the kill call)', r),
        '',
        `Signal after rotation vs the direct \`docker kill\`: ${(s.p50 / r.p50).toFixed(1)}× at p50. The agent sends the signal through dockerd (\`POST /containers/ID/kill\`) once it has applied the version, so each trap line carries the rotated value (checked per rotation); what the second row adds over the baseline is the push from the store to the agent and the agent's apply.`,
      ].join('\n'),
    };
  } finally {
    logs?.kill('SIGKILL');
    closeClients();
    if (dockerd) dockerd.docker(['rm', '-f', 'reloader']);
    await stopDockerSuite({ up, dockerd, plugin, dir });
    await scratch.remove();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { markdown } = await runDockerReloadBench();
  process.stdout.write(`${markdown}\n`);
}
