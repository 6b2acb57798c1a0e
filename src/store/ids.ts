import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random object id in Docker's style: 25 lowercase letters and digits. */
export function newObjectId(): string {
  let id = '';
  for (let i = 0; i < 25; i++) id += ALPHABET[randomInt(ALPHABET.length)];
  return id;
}
