import { get, post, del, query, enc } from '../api.js';
import { h, replace, stateBadge, table, alertBox, timeEl, topicHref, errorText, field, expirySelect, fmtBytes } from '../dom.js';

// Shares: a topic shared with an outside party through credentials of
// its own, limited to reading that topic. The password is shown once.
export async function sharesView(main, _params, q, app) {
  const list = h('div', {});
  const topic = q.get('topic') || '';
  replace(main, h('h1', {}, 'Shares'),
    h('section', { class: 'card', 'aria-labelledby': 'new-share' }, h('h2', { id: 'new-share' }, 'Share a topic'),
      shareForm(app, topic, () => sharesList(list, app, ''), true)),
    h('section', { class: 'card', 'aria-labelledby': 'share-list' }, h('h2', { id: 'share-list' }, 'Shares you can see'), list));
  await sharesList(list, app, '');
}

export async function sharesList(el, app, topic) {
  const alive = app.alive();
  replace(el, h('p', { class: 'muted' }, 'Loading…'));
  let answer;
  try {
    answer = await get(`/api/v1/shares${query({ topic, limit: 200 })}`);
  } catch (err) {
    if (alive()) replace(el, alertBox('Loading the shares failed', err));
    return;
  }
  if (!alive()) return;
  const items = answer.items || [];
  if (!items.length) {
    replace(el, h('p', { class: 'muted' }, topic ? 'This topic is not shared.' : 'No shares.'));
    return;
  }
  replace(el, table(null, ['Topic', 'Recipient', 'User name', 'Created', 'Expires', 'Quota', 'State', ''],
    items.map((sh) => [
      h('a', { href: topicHref(sh.topic) }, sh.topic), sh.recipient, h('code', {}, sh.username || ''),
      [timeEl(sh.createdAt), sh.createdBy ? ` by ${sh.createdBy}` : ''], sh.expiresAt ? timeEl(sh.expiresAt) : 'never',
      sh.quota && sh.quota.consumerByteRate ? `${fmtBytes(sh.quota.consumerByteRate)}/s` : '—',
      [stateBadge(sh.state), sh.revokedBy ? ` by ${sh.revokedBy}` : ''],
      sh.state === 'ACTIVE' ? revokeButton(sh, () => sharesList(el, app, topic), app) : '',
    ]), { class: 'shares' }));
}

// revokeButton asks for a second click before revoking.
function revokeButton(sh, done, app) {
  const b = h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke the share of ${sh.topic} with ${sh.recipient}` }, 'Revoke');
  let armed = false;
  b.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      b.textContent = 'Confirm revoke';
      return;
    }
    b.disabled = true;
    try {
      await del(`/api/v1/shares/${enc(sh.id)}`);
      app.toast(`The share with ${sh.recipient} is revoked: its credentials stop working now.`);
      done();
    } catch (err) {
      app.toast(`Revoking failed: ${errorText(err)}`, 'error');
      b.disabled = false;
    }
  });
  return b;
}

export function shareForm(app, topic, created, askTopic = false) {
  const topicInput = h('input', { id: 'share-topic', name: 'topic', value: topic, required: true, autocomplete: 'off' });
  const recipient = h('input', { id: 'share-recipient', name: 'recipient', required: true, autocomplete: 'off' });
  const description = h('input', { id: 'share-description', name: 'description', autocomplete: 'off' });
  const expiry = expirySelect('share-expiry');
  const quota = h('input', { id: 'share-quota', name: 'quota', type: 'number', min: 1, step: 1 });
  const out = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Create share');
  const form = h('form', { class: 'share-form', 'aria-label': 'Share a topic' },
    askTopic ? field('Topic', topicInput) : null,
    field('Recipient', recipient, 'Who receives the data, e.g. a partner company.'),
    field('Description (optional)', description),
    field('Expires', expiry),
    field('Read quota in bytes per second (optional)', quota),
    button, out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { topic: askTopic ? topicInput.value.trim() : topic, recipient: recipient.value.trim() };
    if (description.value.trim()) body.description = description.value.trim();
    if (expiry.value) body.duration = expiry.value;
    if (quota.value) body.quota = { consumerByteRate: Number(quota.value) };
    button.disabled = true;
    try {
      const answer = await post('/api/v1/shares', body);
      replace(out, credentials(answer));
      recipient.value = '';
      description.value = '';
      created();
    } catch (err) {
      replace(out, h('p', { class: 'error', role: 'alert' }, `Sharing failed: ${errorText(err)}`));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// credentials shows what the recipient needs, once.
function credentials(answer) {
  const c = answer.credentials || {};
  const conn = answer.connection || {};
  const rows = [
    ['Bootstrap servers', conn.bootstrapServers],
    ['Security protocol', conn.securityProtocol],
    ['SASL mechanism', c.mechanism || conn.saslMechanism],
    ['User name', c.username],
    ['Password', c.password],
    ['Schema registry', conn.schemaRegistryUrl],
  ];
  const props = [
    `bootstrap.servers=${conn.bootstrapServers || ''}`,
    `security.protocol=${conn.securityProtocol || ''}`,
    `sasl.mechanism=${c.mechanism || conn.saslMechanism || ''}`,
    `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${c.username || ''}" password="${c.password || ''}";`,
  ].join('\n');
  return h('div', { class: 'credentials', role: 'status' },
    h('p', { class: 'warn' }, h('strong', {}, 'Copy these now: '), 'the password is shown only this once and is not stored.'),
    h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, h('code', {}, v || '—'))])),
    h('details', {}, h('summary', {}, 'As Kafka client properties'), h('pre', {}, props)));
}
