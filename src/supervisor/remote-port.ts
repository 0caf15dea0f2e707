/** `wheellock port-forward`: a host TCP connection tunnelled through the control socket. */
import type { Socket } from "node:net";
import { errorFromWire, openOperation } from "./client-conn.js";
import { encodeMessage, Msg, parseJson, type Message, type WireError } from "./wire.js";

/** Relays `client` to guest 127.0.0.1:`port`; `onError` hears why a connection failed. */
export function tunnelTcp(
  socketPath: string,
  id: string,
  port: number,
  client: Socket,
  onError: (err: Error) => void,
): void {
  client.pause();
  client.on("error", () => undefined);
  let control: Socket | undefined;
  const onMessage = (msg: Message): void => {
    switch (msg.type) {
      case Msg.Stdout:
        if (!client.write(msg.payload) && control) {
          const c = control;
          c.pause();
          client.once("drain", () => c.resume());
        }
        return;
      case Msg.Eof:
      case Msg.Result:
        client.end();
        return;
      case Msg.Error:
        onError(errorFromWire(parseJson<WireError>(msg.payload)));
        client.destroy();
        return;
    }
  };
  openOperation(socketPath, id, { op: "port-forward", port }, onMessage).then(
    (c) => {
      control = c;
      c.once("close", () => client.destroy());
      client.once("close", () => c.destroy());
      client.on("data", (chunk: Buffer) => {
        if (!c.write(encodeMessage(Msg.Stdin, chunk))) {
          client.pause();
          c.once("drain", () => client.resume());
        }
      });
      client.once("end", () => c.write(encodeMessage(Msg.Stdin)));
      client.resume();
    },
    (err: Error) => {
      onError(err);
      client.destroy();
    },
  );
}
