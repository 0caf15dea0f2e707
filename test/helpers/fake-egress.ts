// The egress half of a fake SandboxApi (allowlist, approvals, usage), shared by the fakes that
// stand in for a VM in unit tests: an allowlist that only records, nothing ever held for
// approval, usage of nothing but the execs a fake reports to `meter`.
import { ErrInvalidConfig, ErrNotFound } from "../../src/errors.js";
import { UsageMeter, type BlockedRequest, type SandboxUsage } from "../../src/observe/index.js";
import type { AllowlistState } from "../../src/index.js";

export abstract class FakeEgress {
  allowlist: AllowlistState = { intercepting: true, hosts: [], emptyDeniesAll: false };
  protected readonly meter = new UsageMeter();

  /** Throws when the fake sandbox can no longer be used (closed). */
  protected live(): void {}

  async allowHosts(...hosts: string[]): Promise<string[]> {
    this.live();
    if (!this.allowlist.intercepting) throw new ErrInvalidConfig("open mode");
    const added = hosts.filter((h) => !this.allowlist.hosts.includes(h));
    this.allowlist = { ...this.allowlist, hosts: [...this.allowlist.hosts, ...added] };
    return added;
  }

  async disallowHosts(...hosts: string[]): Promise<string[]> {
    const removed = this.allowlist.hosts.filter((h) => hosts.includes(h));
    this.allowlist = {
      ...this.allowlist,
      hosts: this.allowlist.hosts.filter((h) => !hosts.includes(h)),
    };
    return removed;
  }

  async allowedHosts(): Promise<AllowlistState> {
    this.live();
    return { ...this.allowlist, hosts: [...this.allowlist.hosts] };
  }

  async pendingRequests(): Promise<BlockedRequest[]> {
    return [];
  }

  async decideRequest(requestId: number): Promise<void> {
    throw new ErrNotFound(`request ${requestId} is not waiting for approval`);
  }

  async usage(): Promise<SandboxUsage> {
    return this.meter.snapshot({ cpuSeconds: 0, peakMemoryBytes: 0, diskWrittenBytes: 0 });
  }
}
