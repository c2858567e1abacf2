// Voximplant's official Node.js client (@voximplant/apiclient-nodejs,
// pinned in package-lock.json) against the voxbind sandbox, unchanged.
// The client only speaks https, so the sandbox runs with --tls and Node
// trusts its certificate through NODE_EXTRA_CA_CERTS.
//
// Environment:
//   VOXIMPLANT_CREDENTIALS  the key file written by 'voxbind sandbox init --children 2'
//   SANDBOX_HOST            host:port of 'voxbind sandbox serve --tls'
//
// It reads the demo account (account info, registrations paged and
// filtered, applications, rules, users), binds registrations to an
// application, a rule and a user, unbinds one, checks error answers, and
// acts on a child account. Each step prints one line; the first failure
// ends the run with exit status 1.
'use strict';

const assert = require('node:assert/strict');
const VoximplantApiClient = require('@voximplant/apiclient-nodejs').default;

const PARENT = 1000001;
const CHILD = 1000002;
const CHILD_SHIFT = 100000; // the demo children's ids: the demo's plus k × 100000

function connect(accountId) {
  return new Promise((resolve) => {
    const client = new VoximplantApiClient({
      pathToCredentials: process.env.VOXIMPLANT_CREDENTIALS,
      host: process.env.SANDBOX_HOST,
      accountId,
    });
    client.onReady = resolve;
  });
}

// ok asserts that an answer is not an error answer and returns it.
function ok(answer) {
  assert.equal(answer.error, undefined, 'API error: ' + JSON.stringify(answer.error));
  return answer;
}

const ids = (rows) => rows.map((r) => r.sipRegistrationId);

async function step(name, fn) {
  try {
    await fn();
    console.log('ok    ' + name);
  } catch (err) {
    console.log('FAIL  ' + name + ': ' + (err && err.stack ? err.stack : err));
    process.exit(1);
  }
}

async function main() {
  const api = await connect();

  await step('GetAccountInfo', async () => {
    const a = ok(await api.Accounts.getAccountInfo({}));
    assert.equal(a.result.accountId, PARENT);
    assert.equal(a.result.accountName, 'demo');
  });

  let all;
  await step('GetSipRegistrations, all of them', async () => {
    const a = ok(await api.SIPRegistration.getSipRegistrations({ count: 100 }));
    all = ids(a.result);
    assert.equal(all.length, 12);
    assert.equal(a.count, 12);
  });

  await step('GetSipRegistrations, paged by 5', async () => {
    const seen = [];
    for (let offset = 0; ; ) {
      const a = ok(await api.SIPRegistration.getSipRegistrations({ count: 5, offset }));
      if (a.result.length === 0) break;
      assert.ok(a.result.length <= 5);
      seen.push(...ids(a.result));
      offset += a.result.length;
    }
    assert.deepEqual(seen, all);
  });

  const filters = [
    ['a user', { userId: 200 }, [3001]],
    ['users as a list', { userId: [200, 203] }, [3001, 3004]],
    ['any rule', { ruleId: 'any' }, [3006, 3007, 3008, 3012]],
    ['rules as a list', { ruleId: [100, 103] }, [3006, 3007]],
    ['a rule name', { ruleName: 'inbound-main' }, [3006]],
    ['an application name', { applicationName: 'fax' }, [3007]],
    ['applications as a list', { applicationId: [10, 12] }, [3001, 3002, 3006, 3007, 3011]],
    ['unsuccessful', { successful: false }, [3005, 3009, 3012]],
    ['not persistent', { isPersistent: false }, [3010]],
    ['in progress', { inProgress: true }, [3005]],
    ['status codes', { statusCode: '400:499' }, [3009, 3012]],
    ['frozen', { deactivated: true }, [3012]],
    ['unbound', { isBoundToApplication: false }, [3003, 3005, 3009, 3010]],
    // The client joins id lists with ';' itself; name lists are given joined.
    ['a proxy list', { proxy: 'fax.example.net;sip.carrier.example' }, [3007, 3008, 3009]],
    ['application names as a list', { applicationName: 'support;fax' }, [3001, 3002, 3006, 3007, 3011]],
    ['a user name fragment', { sipUsername: 'trunk' }, [3008, 3009]],
  ];
  for (const [name, filter, want] of filters) {
    await step('GetSipRegistrations, ' + name, async () => {
      const a = ok(await api.SIPRegistration.getSipRegistrations(filter));
      assert.deepEqual(ids(a.result), want);
    });
  }

  await step('GetApplications', async () => {
    const a = ok(await api.Applications.getApplications({ withRules: true }));
    assert.deepEqual(
      a.result.map((x) => x.applicationName),
      ['support.demo.voximplant.com', 'sales.demo.voximplant.com', 'fax.demo.voximplant.com']
    );
    assert.equal(a.totalCount, 3);
  });

  await step('GetRules by application name', async () => {
    const a = ok(await api.Rules.getRules({ applicationName: 'support' }));
    assert.deepEqual(a.result.map((r) => r.ruleName), ['inbound-main', 'after-hours']);
  });

  await step('GetUsers of an application', async () => {
    const a = ok(await api.Users.getUsers({ applicationId: 10 }));
    assert.deepEqual(a.result.map((u) => u.userName), ['alice', 'bob', 'carol']);
  });

  await step('GetUsers without an application', async () => {
    const a = ok(await api.Users.getUsers({ userName: 'e' }));
    assert.deepEqual(a.result.map((u) => u.userId), [200, 203, 204]);
  });

  const bound = async (id) =>
    ok(await api.SIPRegistration.getSipRegistrations({ sipRegistrationId: id })).result[0];

  await step('BindSipRegistration to an application', async () => {
    assert.equal(ok(await api.SIPRegistration.bindSipRegistration({ sipRegistrationId: 3003, applicationId: 12 })).result, 1);
    const r = await bound(3003);
    assert.equal(r.applicationName, 'fax.demo.voximplant.com');
    assert.equal(r.ruleId, undefined);
  });

  await step('BindSipRegistration to a rule, by names', async () => {
    const a = await api.SIPRegistration.bindSipRegistration({
      sipRegistrationId: 3010,
      applicationName: 'support',
      ruleName: 'after-hours',
    });
    assert.equal(ok(a).result, 1);
    const r = await bound(3010);
    assert.equal(r.ruleId, 101);
    assert.equal(r.ruleName, 'after-hours');
  });

  await step('BindSipRegistration to a user', async () => {
    assert.equal(ok(await api.SIPRegistration.bindSipRegistration({ sipRegistrationId: 3005, applicationId: 11, userId: 204 })).result, 1);
    const r = await bound(3005);
    assert.equal(r.userName, 'erin');
  });

  await step('BindSipRegistration, unbind', async () => {
    assert.equal(ok(await api.SIPRegistration.bindSipRegistration({ sipRegistrationId: 3003, bind: false })).result, 1);
    assert.equal((await bound(3003)).applicationId, undefined);
  });

  await step('an error answer: binding a frozen registration', async () => {
    const a = await api.SIPRegistration.bindSipRegistration({ sipRegistrationId: 3012, applicationId: 10 });
    assert.equal(a.error.code, 496);
    assert.match(a.error.msg, /deactivated/);
  });

  await step('an error answer: a parameter the client sends under another name', async () => {
    // apiclient-nodejs documents userName for GetSipRegistrations but sends
    // it as 'userName', which the sandbox refuses rather than ignores.
    const a = await api.SIPRegistration.getSipRegistrations({ userName: 'alice' });
    assert.equal(a.error.code, 101);
    assert.match(a.error.msg, /userName/);
  });

  await step('GetChildrenAccounts', async () => {
    const a = ok(await api.Accounts.getChildrenAccounts({ childAccountId: 'any' }));
    assert.deepEqual(a.result.map((c) => c.accountId), [CHILD, CHILD + 1]);
    const none = await api.Accounts.getChildrenAccounts({ count: 10 });
    assert.equal(none.error.code, 485);
  });

  await step('a child account, with the parent key', async () => {
    const child = await connect(CHILD);
    const info = ok(await child.Accounts.getAccountInfo({}));
    assert.equal(info.result.accountId, CHILD);
    const regs = ok(await child.SIPRegistration.getSipRegistrations({ userId: CHILD_SHIFT + 200 }));
    assert.deepEqual(ids(regs.result), [CHILD_SHIFT + 3001]);
  });

  await step('an error answer: an account that is not a child', async () => {
    const stranger = await connect(4242);
    const a = await stranger.Accounts.getAccountInfo({});
    assert.equal(a.error.code, 100);
  });
}

main().catch((err) => {
  console.log('FAIL  ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});
