/**
 * The environment QEMU starts with: nothing of the caller's but the locale and temp dir. The
 * caller's environment holds what `--secret NAME` reads (the real values) and whatever else the
 * user exported; QEMU needs none of it, and a compromised QEMU (running as a user of its own
 * when wheellock runs as root) must not find it in /proc/self/environ.
 */
const PASSED = ["LANG", "LC_ALL", "TMPDIR"] as const;
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function qemuEnvironment(callerEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: SYSTEM_PATH };
  for (const key of PASSED) {
    const value = callerEnv[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}
