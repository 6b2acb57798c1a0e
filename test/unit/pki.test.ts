import { createHash, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import forge from 'node-forge';
import { HushError, type ErrorCode } from '../../src/errors/index.js';
import {
  certFingerprint,
  createClusterCa,
  createCsr,
  fingerprintMatches,
  generateKeyPair,
  issueClientCert,
  issueServerCert,
  readCertIdentity,
  secretsEqual,
  signNodeCsr,
  verifyIssuedBy,
  type KeyAndCert,
} from '../../src/pki/index.js';
import type { Role } from '../../src/acl/index.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const HOUR_MS = 3_600_000;

function expectHushError(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a HushError').to.be.instanceOf(HushError);
  expect((thrown as HushError).code).to.equal(code);
  expect((thrown as HushError).message).to.match(message);
}

/** A CSR built and signed by forge alone (its own RSA code), asking for a subject of its choosing. */
function forgeCsr(keyPem: string, subject: forge.pki.CertificateField[]): string {
  const privateKey = forge.pki.privateKeyFromPem(keyPem);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  csr.setSubject(subject);
  csr.sign(privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function derToPem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function nodeCert(ca: KeyAndCert, nodeId = 'node-1', validitySeconds = 3600): string {
  const { keyPem } = generateKeyPair();
  return signNodeCsr(ca, createCsr(keyPem, nodeId), { nodeId, role: 'node', validitySeconds });
}

describe('pki', () => {
  let ca: KeyAndCert;
  let otherCa: KeyAndCert;
  let agentKey: { keyPem: string; publicKeyPem: string };

  before(() => {
    ca = createClusterCa();
    otherCa = createClusterCa(); // same default name, different key
    agentKey = generateKeyPair();
  });

  describe('cluster CA', () => {
    it('is a self-signed CA certificate limited to signing certificates and CRLs', () => {
      const x509 = new X509Certificate(ca.certPem);
      expect(x509.ca).to.equal(true);
      expect(x509.checkIssued(x509)).to.equal(true);
      expect(x509.verify(x509.publicKey)).to.equal(true);
      expect(x509.publicKey.equals(createPublicKey(ca.keyPem))).to.equal(true);

      const cert = forge.pki.certificateFromPem(ca.certPem);
      const bc = cert.getExtension('basicConstraints') as { cA: boolean; pathLenConstraint?: number; critical: boolean };
      expect(bc).to.include({ cA: true, pathLenConstraint: 0, critical: true });
      const ku = cert.getExtension('keyUsage') as Record<string, boolean>;
      expect(ku).to.include({ keyCertSign: true, cRLSign: true, digitalSignature: false, critical: true });
      expect(cert.siginfo.algorithmOid).to.equal(forge.pki.oids.sha256WithRSAEncryption);
    });

    it('is valid for ten years by default, and takes a name and lifetime', () => {
      const identity = readCertIdentity(ca.certPem);
      expect(identity.commonName).to.equal('hush cluster CA');
      const days = (identity.notAfter.getTime() - Date.now()) / (24 * HOUR_MS);
      expect(days).to.be.within(3649, 3650);

      const custom = readCertIdentity(createClusterCa({ commonName: 'prod CA', validityDays: 30 }).certPem);
      expect(custom.commonName).to.equal('prod CA');
      expect((custom.notAfter.getTime() - Date.now()) / (24 * HOUR_MS)).to.be.within(29.9, 30);
    });

    it('refuses a zero or negative lifetime', () => {
      expectHushError(() => createClusterCa({ validityDays: 0 }), 'bad_request', /validityDays must be a positive number/);
      expectHushError(() => createClusterCa({ validityDays: -1 }), 'bad_request', /validityDays/);
    });

    it('is not accepted as a peer certificate although it verifies against itself', () => {
      expectHushError(() => verifyIssuedBy(ca, ca.certPem), 'unauthorized', /CA certificate is not accepted/);
    });

    it('refuses to issue with a key that is not the CA key', () => {
      const mixed = { certPem: ca.certPem, keyPem: otherCa.keyPem };
      expectHushError(() => issueClientCert(mixed, { commonName: 'x', role: 'admin' }), 'bad_request', /does not belong/);
    });

    it('refuses to issue from a certificate that is not a CA', () => {
      const client = issueClientCert(ca, { commonName: 'alice', role: 'admin' });
      expectHushError(() => issueClientCert(client, { commonName: 'mallory', role: 'admin' }), 'bad_request', /not a CA/);
    });
  });

  describe('certFingerprint / fingerprintMatches', () => {
    it('is the lowercase hex SHA-256 of the DER, from PEM or DER', () => {
      const x509 = new X509Certificate(ca.certPem);
      const expected = createHash('sha256').update(x509.raw).digest('hex');
      expect(certFingerprint(ca.certPem)).to.equal(expected).and.to.match(/^[0-9a-f]{64}$/);
      expect(certFingerprint(x509.raw)).to.equal(expected);
      expect(x509.fingerprint256.replace(/:/g, '').toLowerCase()).to.equal(expected);
    });

    it('matches only the CA it was taken from', () => {
      const fp = certFingerprint(ca.certPem);
      expect(fingerprintMatches(fp, ca.certPem)).to.equal(true);
      expect(fingerprintMatches(new X509Certificate(ca.certPem).fingerprint256, ca.certPem)).to.equal(true);
      expect(fingerprintMatches(fp, otherCa.certPem)).to.equal(false);
      expect(fingerprintMatches(fp, 'not a certificate')).to.equal(false);
      expect(fingerprintMatches(fp.slice(0, 63), ca.certPem)).to.equal(false);
    });

    it('refuses what is not a certificate', () => {
      expectHushError(() => certFingerprint('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), 'bad_request', /not an X\.509/);
    });
  });

  describe('signNodeCsr', () => {
    it('sets CN=<nodeId>, OU=node, O=hush whatever subject the CSR asks for', () => {
      const csr = forgeCsr(agentKey.keyPem, [
        { shortName: 'CN', value: 'store-admin' },
        { shortName: 'OU', value: 'admin' },
        { shortName: 'O', value: 'evil corp' },
      ]);
      const certPem = signNodeCsr(ca, csr, { nodeId: 'n7x2', role: 'node', validitySeconds: 3600 });

      const identity = readCertIdentity(certPem);
      expect(identity).to.include({ commonName: 'n7x2', role: 'node', organization: 'hush' });
      const subject = forge.pki.certificateFromPem(certPem).subject.attributes.map((a) => `${a.shortName}=${String(a.value)}`);
      expect(subject).to.have.members(['CN=n7x2', 'OU=node', 'O=hush']);
    });

    it('certifies the CSR key, for client authentication only, under the CA', () => {
      const certPem = signNodeCsr(ca, createCsr(agentKey.keyPem, 'agent'), { nodeId: 'n1', role: 'node', validitySeconds: 3600 });
      const x509 = new X509Certificate(certPem);
      expect(x509.publicKey.equals(createPublicKey(agentKey.publicKeyPem))).to.equal(true);
      expect(x509.keyUsage).to.deep.equal([CLIENT_AUTH]);
      expect(x509.ca).to.equal(false);
      expect(() => verifyIssuedBy(ca, certPem)).not.to.throw();
      expect(() => verifyIssuedBy(ca.certPem, certPem)).not.to.throw();

      const ku = forge.pki.certificateFromPem(certPem).getExtension('keyUsage') as Record<string, boolean>;
      expect(ku).to.include({ digitalSignature: true, keyEncipherment: true, keyCertSign: false });
    });

    it('backdates notBefore by a minute and lasts validitySeconds', () => {
      const before = Date.now();
      const { notBefore, notAfter } = readCertIdentity(nodeCert(ca, 'n1', 600));
      // Certificate times have whole seconds.
      expect(notBefore.getTime()).to.be.within(before - 61_000, before - 59_000);
      expect(notAfter.getTime()).to.be.within(before + 599_000, Date.now() + 600_000);
    });

    it('gives each certificate a different positive serial', () => {
      const csr = createCsr(agentKey.keyPem, 'agent');
      const serials = Array.from({ length: 5 }, () =>
        readCertIdentity(signNodeCsr(ca, csr, { nodeId: 'n1', role: 'node', validitySeconds: 60 })).serial,
      );
      expect(new Set(serials).size).to.equal(5);
      for (const serial of serials) {
        expect(serial).to.match(/^[0-9a-f]{32}$/);
        expect(parseInt(serial[0]!, 16)).to.be.within(4, 7); // top bit clear, no leading zero byte
      }
    });

    it('refuses a CSR whose signed content was altered', () => {
      const der = pemToDer(createCsr(agentKey.keyPem, 'whatever'));
      const at = der.indexOf('whatever');
      expect(at).to.be.greaterThan(0);
      der[at + 7] = 'x'.charCodeAt(0); // "whatevex"
      const tampered = derToPem(der, 'CERTIFICATE REQUEST');
      expect(forge.pki.certificationRequestFromPem(tampered).subject.getField('CN').value).to.equal('whatevex');
      expectHushError(
        () => signNodeCsr(ca, tampered, { nodeId: 'n1', role: 'node', validitySeconds: 60 }),
        'bad_request',
        /signature does not verify/,
      );
    });

    it('refuses a CSR whose public key was swapped', () => {
      const honest = forge.pki.certificationRequestFromPem(createCsr(agentKey.keyPem, 'agent'));
      honest.publicKey = forge.pki.publicKeyFromPem(generateKeyPair().publicKeyPem);
      honest.certificationRequestInfo = null; // make forge re-encode the request info with the new key
      const swapped = forge.pki.certificationRequestToPem(honest);
      expectHushError(() => signNodeCsr(ca, swapped, { nodeId: 'n1', role: 'node', validitySeconds: 60 }), 'bad_request', /signature/);
    });

    it('refuses garbage and keys under 2048 bits', () => {
      expectHushError(() => signNodeCsr(ca, 'hello', { nodeId: 'n1', role: 'node', validitySeconds: 60 }), 'bad_request', /PKCS#10/);
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      expectHushError(
        () => signNodeCsr(ca, createCsr(weak, 'weak'), { nodeId: 'n1', role: 'node', validitySeconds: 60 }),
        'bad_request',
        /1024 bits; at least 2048/,
      );
    });

    it('refuses bad options before signing', () => {
      const csr = createCsr(agentKey.keyPem, 'agent');
      expectHushError(() => signNodeCsr(ca, csr, { nodeId: '', role: 'node', validitySeconds: 60 }), 'bad_request', /common name/);
      expectHushError(() => signNodeCsr(ca, csr, { nodeId: 'n1', role: 'node', validitySeconds: 0 }), 'bad_request', /validitySeconds/);
      const asAdmin = { nodeId: 'n1', role: 'admin', validitySeconds: 60 } as unknown as Parameters<typeof signNodeCsr>[2];
      expectHushError(() => signNodeCsr(ca, csr, asAdmin), 'bad_request', /role "node"/);
    });
  });

  describe('verifyIssuedBy', () => {
    it('refuses a certificate from another CA, even one with the same name', () => {
      expect(readCertIdentity(otherCa.certPem).commonName).to.equal(readCertIdentity(ca.certPem).commonName);
      const foreign = nodeCert(otherCa);
      expect(() => verifyIssuedBy(otherCa, foreign)).not.to.throw();
      expectHushError(() => verifyIssuedBy(ca, foreign), 'unauthorized', /not issued by this cluster's CA/);
    });

    it('refuses an expired certificate and one not yet valid', () => {
      const certPem = nodeCert(ca, 'n1', 1);
      const { notBefore, notAfter } = readCertIdentity(certPem);
      expect(() => verifyIssuedBy(ca, certPem, notBefore)).not.to.throw();
      expectHushError(() => verifyIssuedBy(ca, certPem, new Date(Date.now() + HOUR_MS)), 'unauthorized', /expired at/);
      expectHushError(() => verifyIssuedBy(ca, certPem, new Date(notAfter.getTime() + 1000)), 'unauthorized', /expired at/);
      expectHushError(() => verifyIssuedBy(ca, certPem, new Date(Date.now() - HOUR_MS)), 'unauthorized', /not valid before/);
    });

    it('refuses what is not a certificate as unauthorized', () => {
      expectHushError(() => verifyIssuedBy(ca, 'garbage'), 'unauthorized', /peer certificate rejected/);
    });
  });

  describe('issueClientCert', () => {
    for (const role of ['admin', 'operator', 'auditor'] as const) {
      it(`issues a ${role} client certificate with the role in the OU`, () => {
        const client = issueClientCert(ca, { commonName: 'alice', role });
        expect(readCertIdentity(client.certPem)).to.include({ commonName: 'alice', role, organization: 'hush' });
        const x509 = new X509Certificate(client.certPem);
        expect(x509.keyUsage).to.deep.equal([CLIENT_AUTH]);
        expect(x509.publicKey.equals(createPublicKey(client.keyPem))).to.equal(true);
        verifyIssuedBy(ca, client.certPem);
      });
    }

    it('keeps names that PrintableString cannot hold', () => {
      for (const name of ['ci_bot@example.com', 'José Müller']) {
        const client = issueClientCert(ca, { commonName: name, role: 'operator' });
        expect(readCertIdentity(client.certPem).commonName).to.equal(name);
        expect(new X509Certificate(client.certPem).subject).to.include(`CN=${name}`);
      }
    });

    it('refuses unknown roles and bad names', () => {
      expectHushError(() => issueClientCert(ca, { commonName: 'a', role: 'root' as Role }), 'bad_request', /unknown role "root"/);
      expectHushError(() => issueClientCert(ca, { commonName: 'a'.repeat(65), role: 'admin' }), 'bad_request', /1 to 64 characters/);
      expectHushError(() => issueClientCert(ca, { commonName: 'a\nb', role: 'admin' }), 'bad_request', /control characters/);
    });

    it('does not outlive its CA', () => {
      const shortCa = createClusterCa({ validityDays: 2 });
      const client = issueClientCert(shortCa, { commonName: 'alice', role: 'admin', validitySeconds: 30 * 86_400 });
      expect(readCertIdentity(client.certPem).notAfter.getTime()).to.equal(readCertIdentity(shortCa.certPem).notAfter.getTime());
    });

    it('chains to a CA whose name is not ASCII', () => {
      const unicodeCa = createClusterCa({ commonName: 'Zürich CA' });
      const client = issueClientCert(unicodeCa, { commonName: 'alice', role: 'admin' });
      expect(new X509Certificate(client.certPem).checkIssued(new X509Certificate(unicodeCa.certPem))).to.equal(true);
      verifyIssuedBy(unicodeCa, client.certPem);
    });
  });

  describe('issueServerCert', () => {
    it('puts host names in DNS SANs and addresses in IP SANs, plus loopback', () => {
      const server = issueServerCert(ca, { hosts: ['Store.Example', '10.0.0.5', '2001:db8::7', '[fd00::1]'] });
      const x509 = new X509Certificate(server.certPem);
      const sans = (x509.subjectAltName ?? '').split(', ');
      expect(sans).to.include.members(['DNS:store.example', 'IP Address:10.0.0.5', 'DNS:localhost', 'IP Address:127.0.0.1']);
      expect(sans.filter((s) => s.startsWith('DNS:'))).to.have.members(['DNS:store.example', 'DNS:localhost']);
      expect(sans).to.have.length(7);

      expect(x509.checkHost('store.example')).to.equal('store.example');
      expect(x509.checkIP('10.0.0.5')).to.equal('10.0.0.5');
      expect(x509.checkIP('2001:db8::7')).to.equal('2001:db8::7');
      expect(x509.checkIP('fd00::1')).to.equal('fd00::1');
      expect(x509.checkIP('::1')).to.equal('::1');
      expect(x509.checkIP('127.0.0.1')).to.equal('127.0.0.1');
      expect(x509.checkIP('10.0.0.6')).to.equal(undefined);
      expect(x509.checkHost('other.example')).to.equal(undefined);
      expect(x509.keyUsage).to.deep.equal([SERVER_AUTH]);
      verifyIssuedBy(ca, server.certPem);
    });

    it('does not repeat loopback hosts given explicitly', () => {
      const server = issueServerCert(ca, { hosts: ['localhost', '127.0.0.1', '::1'] });
      expect(new X509Certificate(server.certPem).subjectAltName?.split(', ')).to.have.length(3);
    });

    it('refuses what is neither a host name nor an IP address', () => {
      for (const bad of ['', 'bad host', 'under_score.example', 'http://x', '-lead.example']) {
        expectHushError(() => issueServerCert(ca, { hosts: [bad] }), 'bad_request', /not a host name or IP address/);
      }
    });
  });

  describe('readCertIdentity', () => {
    it('reads the same identity from PEM and from DER', () => {
      const certPem = nodeCert(ca, 'node-42');
      const fromPem = readCertIdentity(certPem);
      const fromDer = readCertIdentity(new X509Certificate(certPem).raw);
      expect(fromDer).to.deep.equal(fromPem);
      expect(fromPem.fingerprint).to.equal(certFingerprint(certPem));
      expect(fromPem.serial).to.equal(new X509Certificate(certPem).serialNumber.toLowerCase());
    });

    it('refuses garbage', () => {
      expectHushError(() => readCertIdentity(Buffer.from('nope')), 'bad_request', /not an X\.509 certificate/);
    });
  });

  describe('secretsEqual', () => {
    it('compares equal and unequal strings of any lengths', () => {
      expect(secretsEqual('s3cret', 's3cret')).to.equal(true);
      expect(secretsEqual('', '')).to.equal(true);
      expect(secretsEqual('s3cret', 's3creT')).to.equal(false);
      expect(secretsEqual('s3cret', 's3cret!')).to.equal(false);
      expect(secretsEqual('a', 'a'.repeat(1000))).to.equal(false);
      expect(secretsEqual('', 'x')).to.equal(false);
    });
  });
});
