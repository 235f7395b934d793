/**
 * Test support: a small authoritative DNS server on loopback (UDP, dns-packet for the wire format),
 * answering A queries for the names it is given, with records that a test changes while it runs — as a
 * headless Service's name gains and loses pod addresses. Unknown names get NXDOMAIN; known names
 * without addresses of a type get an empty answer (NODATA), as CoreDNS answers.
 */
import dgram from "node:dgram";
import * as packet from "dns-packet";

export class TestDnsServer {
  private readonly socket = dgram.createSocket("udp4");
  private readonly records = new Map<string, string[]>();
  /** Queries answered, by name (lower-case, no trailing dot). */
  readonly queries = new Map<string, number>();

  private constructor() {}

  static async start(port: number): Promise<TestDnsServer> {
    const server = new TestDnsServer();
    server.socket.on("message", (message, peer) => server.answer(message, peer));
    await new Promise<void>((resolve, reject) => {
      server.socket.once("error", reject);
      server.socket.bind(port, "127.0.0.1", () => resolve());
    });
    return server;
  }

  get address(): string {
    const a = this.socket.address();
    return `${a.address}:${a.port}`;
  }

  /** Sets the A records of `name` (an empty list: the name exists with no address). */
  set(name: string, addresses: readonly string[]): void {
    this.records.set(name.toLowerCase().replace(/\.$/, ""), [...addresses]);
  }

  /** Removes `name` (NXDOMAIN from now on). */
  remove(name: string): void {
    this.records.delete(name.toLowerCase().replace(/\.$/, ""));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(message: Buffer, peer: dgram.RemoteInfo): void {
    let query: packet.Packet;
    try {
      query = packet.decode(message);
    } catch {
      return; // not DNS: no answer, as a server would drop it
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase().replace(/\.$/, "");
    this.queries.set(name, (this.queries.get(name) ?? 0) + 1);
    const addresses = this.records.get(name);
    const answers: packet.Answer[] =
      addresses && question.type === "A" ? addresses.map((data) => ({ type: "A", name: question.name, class: "IN", ttl: 5, data })) : [];
    const response = packet.encode({
      id: query.id,
      type: "response",
      // authoritative answer; NXDOMAIN (rcode 3) for a name it does not hold
      flags: packet.AUTHORITATIVE_ANSWER | (addresses ? 0 : 3),
      questions: [question],
      answers,
    });
    this.socket.send(response, peer.port, peer.address);
  }
}
