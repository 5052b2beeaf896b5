import { z } from 'zod';

/** Length only (12-256): no composition rules (NIST SP 800-63B). */
export const Password = z.string().min(12, 'must be at least 12 characters').max(256, 'must be at most 256 characters');
export const Email = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email())
  .describe('Compared case-insensitively (trimmed and lower-cased)');

export const Role = z.enum(['admin', 'user']);

export const UserResponse = z
  .object({
    id: z.uuid(),
    email: z.string(),
    role: Role,
    disabled: z.boolean(),
    createdAt: z.iso.datetime(),
    lastLoginAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'User' });
export type UserResponse = z.infer<typeof UserResponse>;

export const CredentialsBody = z.object({ email: Email, password: Password });
/** Login does not enforce the length rule: a wrong password of any length is just wrong. */
export const LoginBody = z.object({ email: Email, password: z.string().min(1).max(256) });
export type CredentialsBody = z.infer<typeof CredentialsBody>;

export const TokenPairResponse = z.object({
  accessToken: z.string().describe('JWT (HS256); send as `Authorization: Bearer <token>`'),
  refreshToken: z.string().describe('Opaque, single use: each refresh returns a new one; reusing an old one ends the session'),
  expiresIn: z.number().int().describe('Access token lifetime in seconds'),
  tokenType: z.literal('Bearer'),
});

export const LoginResponse = TokenPairResponse.extend({ user: UserResponse });

export const RefreshBody = z.object({ refreshToken: z.string().min(1).max(512) });

export const ChangePasswordBody = z.object({ currentPassword: z.string().min(1).max(256), newPassword: Password });
export type ChangePasswordBody = z.infer<typeof ChangePasswordBody>;
