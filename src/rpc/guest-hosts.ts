/**
 * `add_hosts` of a sandbox without a network: the reference still writes them into the
 * guest's /etc/hosts (its maintainer kept them legal with `no_network` for local names), and
 * wheellock's network setup, which writes them otherwise, does not run without a network.
 */
import type { SandboxApi } from "../sandbox/index.js";

const HOSTS = "/etc/hosts";

export async function appendGuestHosts(
  api: SandboxApi,
  hosts: Readonly<Record<string, string>>,
): Promise<void> {
  let current = "";
  try {
    current = (await api.readFile(HOSTS)).toString("utf8");
  } catch {
    // no /etc/hosts in the image: start one
  }
  const lines = Object.entries(hosts).map(([name, ip]) => `${ip}\t${name}\n`);
  const sep = current === "" || current.endsWith("\n") ? "" : "\n";
  await api.writeFile(HOSTS, `${current}${sep}${lines.join("")}`, { mode: 0o644 });
}
