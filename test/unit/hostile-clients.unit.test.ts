import { describe, expect, it } from 'vitest';
import { parseAuditNotice } from '../../src/store/audit-notifications.ts';
import { JOB_QUEUE_LOGIN, jobQueueUrl, SERVICE_LOGIN, serviceLoginPassword, serviceLoginUrl } from '../../src/store/service-login.ts';
import { isConnectionLoss } from '../../src/service/request-runner.ts';

describe('the service login (issue 15, finding 8)', () => {
  it("takes the owner's URL with its own user and a password derived from the owner's", () => {
    const url = new URL(serviceLoginUrl('postgresql://postgres:s%40cret@db.internal:5433/keyledger?sslmode=require')!);
    expect({ user: url.username, host: url.host, path: url.pathname, search: url.search }).toEqual({
      user: SERVICE_LOGIN,
      host: 'db.internal:5433',
      path: '/keyledger',
      search: '?sslmode=require',
    });
    expect(url.password).toBe(serviceLoginPassword('postgresql://postgres:s%40cret@elsewhere/other'));
    expect(url.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.password).not.toContain('cret');
  });

  it("differs with the owner's password or user, and is absent without a password", () => {
    const a = serviceLoginPassword('postgresql://postgres:one@h/d');
    expect(serviceLoginPassword('postgresql://postgres:two@h/d')).not.toBe(a);
    expect(serviceLoginPassword('postgresql://admin:one@h/d')).not.toBe(a);
    expect(serviceLoginUrl('postgresql://postgres@h/d')).toBeNull();
  });

  it("gives the job queue a login of its own, with another password; without the owner's password, the owner's URL", () => {
    const owner = 'postgresql://postgres:one@h:5432/d';
    const url = new URL(jobQueueUrl(owner));
    expect(url.username).toBe(JOB_QUEUE_LOGIN);
    expect(url.password).toBe(serviceLoginPassword(owner, JOB_QUEUE_LOGIN));
    expect(url.password).not.toBe(serviceLoginPassword(owner));
    expect(jobQueueUrl('postgresql://postgres@h/d')).toBe('postgresql://postgres@h/d');
    expect(() => serviceLoginPassword(owner, 'postgres')).toThrow(/not one of keyledger's logins/);
  });
});

describe('an audit notification (sql/0030)', () => {
  it('names the transaction, the accounts and the operation; an old or unreadable one concerns everyone', () => {
    expect(parseAuditNotice('7731/111122223333//Encrypt')).toEqual({
      transactionId: 7731n,
      accountId: '111122223333',
      recipientAccountId: null,
      eventName: 'Encrypt',
    });
    expect(parseAuditNotice('12/111122223333/444455556666/Decrypt')).toMatchObject({ recipientAccountId: '444455556666', eventName: 'Decrypt' });
    expect(parseAuditNotice('12///GraphQLRequest')).toMatchObject({ accountId: '', eventName: 'GraphQLRequest' });
    expect(parseAuditNotice('7731')).toEqual({ transactionId: 7731n, accountId: null, recipientAccountId: null, eventName: null });
    expect(parseAuditNotice('garbage')).toEqual({ transactionId: null, accountId: null, recipientAccountId: null, eventName: null });
  });
});

describe('a lost database connection', () => {
  it('is told from a failed statement', () => {
    const pgError = (code: string) => Object.assign(new Error('x'), { code });
    expect(isConnectionLoss(pgError('57P01'))).toBe(true);
    expect(isConnectionLoss(pgError('08006'))).toBe(true);
    expect(isConnectionLoss(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
    expect(isConnectionLoss(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionLoss(pgError('23505'))).toBe(false);
    expect(isConnectionLoss(pgError('40001'))).toBe(false);
    expect(isConnectionLoss('57P01')).toBe(false);
  });
});
