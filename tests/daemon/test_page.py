#!/usr/bin/env python3
"""test_page.py: the daemon's live page in a real browser (headless Chromium over the DevTools
protocol, tests/daemon/cdp.py): what an operator sees, read from the rendered page.

  test_page.py ECHOVIEWD PLUGIN_DIR SOURCE_ROOT [TEST...] [--screenshot PNG]

page: two classified phantom streams and one RTP stream nobody sends to; every card, its view,
confidence bar, probability bars, timeline and thumbnail agree with /api/v1/streams, and the
silent stream shows no label. token: behind a bearer token the page asks for it, and once it
is typed in it connects. With --screenshot the page test also saves the page as a PNG (how
docs/img/live-page.png is made, with the shipped model: see docs/DAEMON.md). Skips (77)
without Chromium.
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, find_chromium  # noqa: E402
from evdtest import SKIP, Daemon, base_config, free_port, run_main, wait_until  # noqa: E402

CONFIG = base_config(http='@TOKEN@', classifier='  roi: auto\n') + """\
streams:
  - id: cart-plax
    source: {type: phantom, width: 320, height: 240, framerate: 10, properties: {view: PLAX-full}}
  - id: cart-apical
    source: {type: phantom, width: 320, height: 240, framerate: 10, properties: {view: A4CH-LV}}
  - id: cart-silent
    source: {type: rtp-raw, port: @RTP_PORT@, width: 64, height: 48, sampling: RGB}
"""

# What the page shows, read from its DOM (one object per card).
CARDS_JS = """
Array.from(document.querySelectorAll('#streams .card')).map(el => {
  const canvas = el.querySelector('canvas.timeline');
  const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
  const img = el.querySelector('img.thumb');
  const lines = sel => { const r = document.createRange();
    r.selectNodeContents(el.querySelector(sel));
    return new Set(Array.from(r.getClientRects()).map(b => Math.round(b.top))).size; };
  const clipped = sel => { const e = el.querySelector(sel); return e.scrollWidth > e.clientWidth; };
  return {
    id: el.querySelector('.id').textContent,
    cls: el.className,
    state: el.querySelector('.state').textContent,
    view: el.querySelector('.view').textContent,
    reason: el.querySelector('.reason').textContent,
    small: el.querySelector('.small').textContent,
    fill: el.querySelector('.fill').style.width,
    probs: Array.from(el.querySelectorAll('.prob')).map(r => [
      r.querySelector('.pname').textContent, r.querySelector('.pval').textContent,
      r.classList.contains('top')]),
    painted: painted,
    lines: [lines('.id'), lines('.view')],
    clipped: [clipped('.id'), clipped('.view')],
    thumb: [img.complete ? img.naturalWidth : 0, img.complete ? img.naturalHeight : 0],
  };
})
"""


def config(env, token=None):
    return (CONFIG.replace('@TOKEN@', '  token: %s\n' % token if token else '')
            .replace('@RTP_PORT@', str(free_port(socket.SOCK_DGRAM))))


def model_for(env):
    # the screenshot shows the shipped model's labels; the test itself runs the fixture
    return env.real_model if '--screenshot' in sys.argv and env.real_model else env.model


def cards(browser):
    return {c['id']: c for c in browser.evaluate(CARDS_JS)}


def test_page(env):
    """Two phantom streams and a silent one, as the page draws them."""
    chromium = find_chromium()
    if not chromium:
        print('chromium not found: skipped')
        return SKIP
    env.model = model_for(env)
    d = Daemon(env, config(env))
    browser = None
    try:
        d.wait_state('cart-plax', 'running', 30)
        d.wait_state('cart-apical', 'running', 30)
        browser = Browser(chromium)
        browser.open('http://127.0.0.1:%d/' % d.port)
        wait_until(lambda: browser.evaluate("document.getElementById('meta').textContent") == 'live',
                   20, what='the page to connect to /api/v1/events')

        def settled():
            shown = cards(browser)
            live = [shown.get(s) for s in ('cart-plax', 'cart-apical')]
            # a stats event drew the card, three timeline cells at least, the thumbnail came
            return shown if all(c and c['small'] and c['painted'] > 0 and c['thumb'][0] > 0
                                and c['probs'] for c in live) and 'cart-silent' in shown else None
        shown = wait_until(settled, 30, interval=0.5, what='stats, timeline and thumbnails drawn')
        for sid in ('cart-plax', 'cart-apical'):
            c, api = shown[sid], d.stream(sid)
            assert c['state'] == 'running' and 'running' in c['cls'].split(), c
            view = api['view']
            # the card's big label is the stable view the API reports (or the one just before it)
            assert c['view'] not in ('-', 'no view', ''), c
            assert c['reason'] == '', c
            # the id and the label on one line each, the label not cut off
            assert c['lines'] == [1, 1] and c['clipped'] == [False, False], c
            names = [p[0] for p in c['probs']]
            assert len(names) == len(view['probabilities']) and set(names) == set(view['probabilities']), \
                (names, view['probabilities'])
            top = [p[0] for p in c['probs'] if p[2]]
            assert len(top) == 1, c['probs']
            values = [float(p[1]) for p in c['probs']]
            assert abs(sum(values) - 1.0) < 0.02 * len(values), values
            assert c['fill'].endswith('%') and 0 <= int(c['fill'][:-1]) <= 100, c['fill']
            assert ' fps | p99 ' in c['small'] and c['small'].startswith('confidence '), c['small']
            fps = float(c['small'].split(' fps')[0].rsplit(' ', 1)[1])
            assert 3 <= fps <= 15, c['small']
            assert tuple(c['thumb']) == (160, 120), c['thumb']
        silent = shown['cart-silent']
        assert silent['state'] != 'running' and silent['view'] in ('-', 'no view'), silent
        assert not silent['probs'], silent
        # the page follows a label change: same view as the API within a few stats events
        for sid in ('cart-plax', 'cart-apical'):
            wait_until(lambda: cards(browser)[sid]['view'] == d.stream(sid)['view']['stable_label'],
                       10, interval=0.5, what='%s: page view == API stable view' % sid)
        if '--screenshot' in sys.argv:
            path = sys.argv[sys.argv.index('--screenshot') + 1]
            time.sleep(5)      # a few more timeline cells for the picture
            with open(path, 'wb') as f:
                f.write(browser.screenshot())
            print('screenshot written to', path)
    finally:
        if browser:
            browser.close()
        d.stop()


def test_token(env):
    """Behind a token: the page asks for it, then connects with it."""
    chromium = find_chromium()
    if not chromium:
        print('chromium not found: skipped')
        return SKIP
    d = Daemon(env, config(env, token='page-s3cret'), token='page-s3cret')
    browser = None
    try:
        d.wait_state('cart-plax', 'running', 30)
        browser = Browser(chromium)
        browser.open('http://127.0.0.1:%d/' % d.port)
        wait_until(lambda: browser.evaluate("document.getElementById('meta').textContent")
                   == 'token required', 20, what='the page to ask for the token')
        assert browser.evaluate("getComputedStyle(document.getElementById('token')).display") == 'block'
        assert browser.evaluate("document.querySelectorAll('#streams .card').length") == 0
        browser.evaluate("document.getElementById('tokenInput').value = 'page-s3cret';"
                         "document.getElementById('tokenButton').click(); true")
        wait_until(lambda: browser.evaluate("document.getElementById('meta').textContent") == 'live',
                   20, what='the page to connect with the token')
        wait_until(lambda: cards(browser).get('cart-plax', {}).get('small'), 20, interval=0.5,
                   what='a stats event drawn behind the token')
        assert browser.evaluate("sessionStorage.getItem('echoviewd-token')") == 'page-s3cret'
    finally:
        if browser:
            browser.close()
        d.stop()


TESTS = {'page': test_page, 'token': test_token}

if __name__ == '__main__':
    argv = [a for i, a in enumerate(sys.argv)
            if a != '--screenshot' and (i == 0 or sys.argv[i - 1] != '--screenshot')]
    sys.exit(run_main(TESTS, argv))
