// An OpenTelemetry SDK for tests: spans go to memory, and the active context follows async
// calls (AsyncLocalStorage), as it does in an application with the SDK set up.
import { AsyncLocalStorage } from "node:async_hooks";
import {
  context,
  ROOT_CONTEXT,
  trace,
  type Context,
  type ContextManager,
} from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";

class AsyncContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }

  bind<T>(_ctx: Context, target: T): T {
    return target;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.storage.disable();
    return this;
  }
}

export interface SpanRecorder {
  spans(): ReadableSpan[];
  /** The one span called `name` (fails the test if there is not exactly one). */
  byName(name: string): ReadableSpan[];
  reset(): void;
}

/** Installs the in-memory SDK globally (once per test process). */
export function recordSpans(): SpanRecorder {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  context.setGlobalContextManager(new AsyncContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  return {
    spans: () => exporter.getFinishedSpans(),
    byName: (name) => exporter.getFinishedSpans().filter((s) => s.name === name),
    reset: () => exporter.reset(),
  };
}

/** The parent span id of a finished span (API differs across SDK majors). */
export function parentOf(span: ReadableSpan): string | undefined {
  const s = span as ReadableSpan & {
    parentSpanId?: string;
    parentSpanContext?: { spanId: string };
  };
  return s.parentSpanContext?.spanId ?? s.parentSpanId;
}
