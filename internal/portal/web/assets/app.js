// The portal's shell: who is logged in, the navigation, and a router
// over the History API (the server answers every route with this page).

import { get, del, onUnauthorized } from './api.js';
import { h, replace, errorText } from './dom.js';
import { loginView } from './views/login.js';
import { searchView } from './views/search.js';
import { productView } from './views/product.js';
import { requestsView } from './views/requests.js';
import { approvalsView } from './views/approvals.js';
import { sharesView } from './views/shares.js';
import { auditView } from './views/audit.js';

const NAV = [
  ['/', 'Products'],
  ['/requests', 'My requests'],
  ['/approvals', 'Approvals'],
  ['/shares', 'Shares'],
  ['/audit', 'Audit log'],
];

const ROUTES = [
  [/^\/(?:search)?$/, searchView, 'Products'],
  [/^\/products\/([^/]+)$/, productView, 'Product'],
  [/^\/requests$/, requestsView, 'My requests'],
  [/^\/approvals$/, approvalsView, 'Approvals'],
  [/^\/shares$/, sharesView, 'Shares'],
  [/^\/audit$/, auditView, 'Audit log'],
  [/^\/login$/, loginView, 'Log in'],
];

// app is what every view is given.
const app = {
  session: null,
  generation: 0,
  navigate,
  toast,
  refreshSession,
  // alive returns a function telling whether the view that called it is
  // still the one shown (a slow answer must not draw over a newer page).
  alive() {
    const g = app.generation;
    return () => g === app.generation;
  },
  isOwner(product) {
    const s = app.session;
    if (!s || !product) return false;
    return s.admin || (product.owner && product.owner === s.principal);
  },
};

function navigate(url, { replace: rep = false } = {}) {
  if (rep) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

let toastTimer = null;
function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  replace(el, h('p', { class: ['toast', `toast-${kind}`] }, message));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => replace(el), 6000);
}

async function refreshSession() {
  app.session = await get('/api/v1/session');
  drawHeader();
  return app.session;
}

function loggedIn() {
  return Boolean(app.session && app.session.principal);
}

function drawHeader() {
  const top = document.getElementById('top');
  top.hidden = !loggedIn();
  const here = location.pathname;
  replace(document.getElementById('nav'), NAV.map(([href, text]) => {
    const current = href === '/' ? (here === '/' || here === '/search' || here.startsWith('/products/')) : here === href;
    return h('li', {}, h('a', { href, 'aria-current': current ? 'page' : null }, text));
  }));
  const who = document.getElementById('who');
  if (loggedIn()) {
    replace(who, 'Signed in as ', h('strong', {}, app.session.principal), app.session.admin ? h('span', { class: 'tag' }, 'admin') : null);
  } else {
    replace(who);
  }
  document.getElementById('logout').hidden = !(app.session && app.session.expiresAt);
  // An anonymous caller (authentication without authorization) may
  // still log in.
  document.getElementById('login').hidden = !(app.session && app.session.passwordLogin && !app.session.expiresAt && app.session.principal === 'User:ANONYMOUS');
}

async function render() {
  app.generation++;
  shownURL = location.pathname + location.search;
  const main = document.getElementById('main');
  const path = location.pathname;
  if (!loggedIn() && path !== '/login') {
    const next = location.pathname + location.search;
    history.replaceState(null, '', `/login${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`);
    return render();
  }
  drawHeader();
  for (const [re, view, title] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    document.title = `${title} · Runnel data portal`;
    replace(main, h('p', { class: 'muted' }, 'Loading…'));
    try {
      await view(main, m.slice(1).map(decodeURIComponent), new URLSearchParams(location.search), app);
    } catch (err) {
      replace(main, h('h1', {}, title), h('p', { class: 'error', role: 'alert' }, errorText(err)));
    }
    return;
  }
  document.title = 'Not found · Runnel data portal';
  replace(main, h('h1', {}, 'Page not found'), h('p', {}, 'There is no page at ', h('code', {}, path), '. ', h('a', { href: '/' }, 'Search the products.')));
}

// Links inside the page navigate without reloading it.
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest('a');
  if (!a || a.getAttribute('target') || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('//') || href.startsWith('/api/')) return;
  ev.preventDefault();
  navigate(href);
});

// A change of the fragment alone (an in-page link) is no new page.
let shownURL = '';
window.addEventListener('popstate', () => {
  if (location.pathname + location.search !== shownURL) render();
});

onUnauthorized(() => {
  app.session = { principal: '', passwordLogin: true };
  toast('Your session ended: log in again.', 'error');
  const next = location.pathname + location.search;
  navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
});

async function logout() {
  try {
    await del('/api/v1/session');
  } catch (err) {
    toast(`Logging out failed: ${errorText(err)}`, 'error');
    return;
  }
  app.session = { principal: '', passwordLogin: true };
  navigate('/login');
}

async function start() {
  document.getElementById('logout').addEventListener('click', logout);
  try {
    await refreshSession();
  } catch (err) {
    replace(document.getElementById('main'), h('h1', {}, 'Runnel data portal'),
      h('p', { class: 'error', role: 'alert' }, `The portal cannot reach the broker: ${errorText(err)}`));
    return;
  }
  await render();
}

start();
