/**
 * The console's root: the start page, or one session. The session's token lives in the page's
 * fragment (`#token=…`) and in memory, never in a path or a query: browsers do not send the
 * fragment to any server, and the page sends no Referer.
 */
import type { VNode } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api } from './api.js';
import { html } from './html.js';
import { SessionView } from './session.js';
import { Start, type Opened } from './start.js';

function tokenInFragment(): string | null {
  return new URLSearchParams(location.hash.slice(1)).get('token');
}

export function App(): VNode {
  const api = useMemo(() => new Api(), []);
  const known = useMemo(() => new Map<string, string>(), []);
  const [opened, setOpened] = useState<Opened | null>(() => {
    const token = tokenInFragment();
    return token ? { token, control: null } : null;
  });

  useEffect(() => {
    // A link pasted into the address bar of an open console.
    const onHash = (): void => {
      const token = tokenInFragment();
      setOpened((current) => (token === (current?.token ?? null) ? current : token ? { token, control: null } : null));
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const open = (o: Opened): void => {
    if (o.id) {
      known.set(o.id, o.token);
    }
    history.replaceState(null, '', `#token=${o.token}`);
    setOpened(o);
  };
  const close = (): void => {
    history.replaceState(null, '', `${location.pathname}${location.search}`);
    setOpened(null);
  };

  return html`
    <div class="app">
      <header class="bar">
        <h1>Fellowship <span class="dim">console</span></h1>
      </header>
      <main>
        ${opened
          ? html`<${SessionView}
              key=${opened.token}
              api=${api}
              token=${opened.token}
              control=${opened.control}
              observerToken=${opened.observerToken}
              autoResume=${opened.autoResume}
              notices=${opened.notices}
              onClose=${close}
            />`
          : html`<${Start} api=${api} known=${known} onOpen=${open} />`}
      </main>
    </div>
  `;
}
