/**
 * The admin HTTPS listener's open connections, by client-certificate serial.
 * Every request is checked against the certificate records (admin-app.ts);
 * this closes the connections of a certificate at the moment it is revoked,
 * so a keep-alive connection opened before the revocation carries nothing
 * more, not even a request already in flight.
 */
import type { Server } from 'node:https';
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { PeerCertificate } from '../store/index.js';

/** The parts of a verified peer certificate that its record must match. */
export function peerCertificateOf(socket: TLSSocket): PeerCertificate {
  const cert = socket.getPeerCertificate();
  // node gives the serial as uppercase hex; records keep it as issued (lowercase).
  return { serial: String(cert.serialNumber ?? '').toLowerCase(), commonName: cert.subject?.CN, role: cert.subject?.OU };
}

export class ClientConnections {
  private readonly bySerial = new Map<string, Set<TLSSocket>>();

  /** Starts tracking every connection that completes its TLS handshake on `server`. */
  attach(server: Server): void {
    server.on('secureConnection', (socket: TLSSocket) => this.track(socket));
  }

  /** Destroys every open connection made with the certificate `serial`; returns how many. */
  cut(serial: string): number {
    const sockets = this.bySerial.get(serial.toLowerCase());
    if (!sockets) return 0;
    this.bySerial.delete(serial.toLowerCase());
    for (const socket of sockets) socket.destroy();
    return sockets.size;
  }

  /** Destroys every open connection whose client certificate `drop` picks (a retired CA's); returns how many. */
  cutWhere(drop: (certificate: X509Certificate) => boolean): number {
    let n = 0;
    for (const [serial, sockets] of this.bySerial) {
      for (const socket of sockets) {
        const certificate = socket.getPeerX509Certificate();
        if (!certificate || !drop(certificate)) continue;
        sockets.delete(socket);
        socket.destroy();
        n++;
      }
      if (sockets.size === 0) this.bySerial.delete(serial);
    }
    return n;
  }

  get size(): number {
    let n = 0;
    for (const sockets of this.bySerial.values()) n += sockets.size;
    return n;
  }

  private track(socket: TLSSocket): void {
    const { serial } = peerCertificateOf(socket);
    if (!serial) return; // the listener requires a certificate, so TLS has refused this one already
    let sockets = this.bySerial.get(serial);
    if (!sockets) this.bySerial.set(serial, (sockets = new Set()));
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && this.bySerial.get(serial) === sockets) this.bySerial.delete(serial);
    });
  }
}
