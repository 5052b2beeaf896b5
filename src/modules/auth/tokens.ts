import { createHash, randomBytes } from 'node:crypto';

/** An opaque refresh token: 32 random bytes, base64url. Only its sha256 is stored. */
export const newRefreshToken = () => randomBytes(32).toString('base64url');

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Claims of our access tokens (JWT HS256). */
export interface AccessClaims {
  /** user id */
  sub: string;
  role: 'admin' | 'user';
  /** users.token_version when issued */
  ver: number;
  /** session id = refresh token family */
  sid: string;
}
