/**
 * Distinguished names: building the subjects we issue and reading names back.
 * Values are written as UTF8String (RFC 5280 §4.1.2.6) so a CN like
 * "ci_bot@example.com" is encoded correctly; forge's default, PrintableString,
 * cannot hold '@' or '_'.
 */
import forge from 'node-forge';
import { HushError } from '../errors/index.js';
import { UTF8_TAG } from './forge-internals.js';
import { ORGANIZATION } from './types.js';

/** X.520 upper bound for CN and OU. */
const MAX_NAME_LENGTH = 64;

export interface SubjectSpec {
  commonName: string;
  role?: string;
  organization?: string;
}

export function checkNameValue(what: string, value: string): void {
  // eslint-disable-next-line no-control-regex
  if (value.length === 0 || value.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new HushError('bad_request', `${what} must be 1 to ${MAX_NAME_LENGTH} characters without control characters`);
  }
}

export function subjectAttributes({ commonName, role, organization = ORGANIZATION }: SubjectSpec): forge.pki.CertificateField[] {
  checkNameValue('common name', commonName);
  const attrs: forge.pki.CertificateField[] = [{ shortName: 'CN', value: commonName, valueTagClass: UTF8_TAG }];
  if (role !== undefined) {
    checkNameValue('role', role);
    attrs.push({ shortName: 'OU', value: role, valueTagClass: UTF8_TAG });
  }
  attrs.push({ shortName: 'O', value: organization, valueTagClass: UTF8_TAG });
  return attrs;
}

/**
 * Attributes as parsed by forge hold UTF8String values as raw UTF-8 bytes, and
 * forge encodes UTF8String values again when writing. Decoding here makes
 * parsed attributes safe both to read and to copy into another certificate
 * (the issuer field of a leaf must match the CA subject exactly).
 */
export function decodedAttributes(attrs: forge.pki.CertificateField[]): forge.pki.CertificateField[] {
  return attrs.map((attr) =>
    attr.valueTagClass === UTF8_TAG && typeof attr.value === 'string'
      ? { ...attr, value: forge.util.decodeUtf8(attr.value) }
      : attr,
  );
}

/**
 * The single value of a name attribute, or undefined if absent. Several values
 * (two OUs, say) are refused: which one a reader picks would be a guess, and
 * an identity must not be ambiguous.
 */
export function singleAttribute(attrs: forge.pki.CertificateField[], shortName: string): string | undefined {
  const values = attrs.filter((a) => a.shortName === shortName).map((a) => String(a.value));
  if (values.length > 1) throw new HushError('bad_request', `certificate subject has ${values.length} ${shortName} values; expected one`);
  return values[0];
}
