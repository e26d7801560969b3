import { post } from '../api.js';
import { h, replace, field, errorText } from '../dom.js';

// safeNext keeps a post-login destination inside the portal.
function safeNext(next) {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/login')) return '/';
  return next;
}

export async function loginView(main, _params, query, app) {
  const next = safeNext(query.get('next'));
  if (app.session && app.session.principal && app.session.principal !== 'User:ANONYMOUS') {
    app.navigate(next, { replace: true });
    return;
  }
  if (!app.session || !app.session.passwordLogin) {
    replace(main, h('h1', {}, 'Log in'),
      h('p', { class: 'error', role: 'alert' }, 'This broker offers no password login: use a client certificate or an Authorization header.'));
    return;
  }
  const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { class: 'login card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in to the data portal'),
    h('p', { class: 'muted' }, 'Use your Runnel (SASL) user name and password.'),
    field('User name', user),
    field('Password', password),
    message,
    button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    message.hidden = true;
    try {
      await post('/api/v1/session', { username: user.value, password: password.value });
      await app.refreshSession();
      app.navigate(next, { replace: true });
    } catch (err) {
      password.value = '';
      replace(message, err.status === 401 ? 'Invalid user name or password.' : errorText(err));
      message.hidden = false;
      button.disabled = false;
      password.focus();
    }
  });
  replace(main, form);
  user.focus();
}
