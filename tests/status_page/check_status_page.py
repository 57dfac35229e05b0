#!/usr/bin/env python3
"""Loads ConvServe's status page in headless Chromium and checks that its
plots draw and then update, while the caller keeps the server under load.

Usage: check_status_page.py CHROMIUM URL

URL is the page (http://127.0.0.1:PORT/). Checks, in order:
  - the page and status.json over HTTP: types, no-store, the JSON's fields;
  - the page's quantile function on known histograms;
  - within a minute: samples plotted, a non-zero rate and p50, a failed call
    (INVALID_ARGUMENT, a strides message) in the recent errors table, and on
    every canvas points drawn and pixels in its series' colours;
  - then, within half a minute, two more samples, and every canvas redrawn
    with a different picture;
  - no script exception, console error or failed poll on the way.

Chromium is driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: it reads commands on fd 3 and writes replies and
events on fd 4, each a JSON message ending in a NUL byte), so neither a port
nor a websocket library is needed. Every wait is bounded; the exit status is
0 when every check passed, 1 with the failed check named otherwise.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request


class CheckFailed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise CheckFailed(what)


class Chromium:
    """A headless Chromium and one page in it, over the DevTools pipe."""

    def __init__(self, binary, profile):
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def on_fds_3_and_4():
            # Move both ends above 4 first, so neither dup2 overwrites the other.
            commands = os.dup(commands_read)
            replies = os.dup(replies_write)
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        self._process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox",  # root cannot use the sandbox
             "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", "--mute-audio",
             "--window-size=1200,1000", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(profile, "chromium.log"), "wb"),
            preexec_fn=on_fds_3_and_4, close_fds=False,
            start_new_session=True)  # its renderers and helpers share its group
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.events = []  # (method, params) of every event seen
        self._session = None

    def close(self):
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait(timeout=30)
        os.close(self._commands)
        os.close(self._replies)

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            check(left > 0, "Chromium did not answer in time")
            ready, _, _ = select.select([self._replies], [], [], left)
            if ready:
                chunk = os.read(self._replies, 1 << 16)
                check(chunk, "Chromium closed its DevTools pipe (did it start?)")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, timeout=30, page=True):
        """Sends a command (to the page's session when `page`) and returns its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                check("error" not in reply, f"{method} failed: {reply.get('error')}")
                return reply["result"]
            if "method" in reply:
                self.events.append((reply["method"], reply.get("params", {})))

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        self._session = self.send("Target.attachToTarget",
                                  {"targetId": target["targetId"], "flatten": True},
                                  page=False)["sessionId"]
        self.send("Runtime.enable")
        self.send("Log.enable")
        navigation = self.send("Page.navigate", {"url": url})
        check("errorText" not in navigation, f"cannot load {url}: {navigation}")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True})
        check("exceptionDetails" not in result,
              f"{expression!r} threw: {result.get('exceptionDetails')}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout, what):
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            check(time.monotonic() < deadline, f"{what} (not within {timeout} s)")
            time.sleep(0.25)

    def page_errors(self):
        errors = []
        for method, params in self.events:
            if method == "Runtime.exceptionThrown":
                errors.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(f"console.error: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url')}")
        return errors


# Per canvas: the points the page says it drew, the pixels in its series'
# colours (near them: lines are antialiased), and a digest of the picture.
CANVASES = """(() => {
  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const out = {};
  for (const plot of convserveStatus.plots) {
    const canvas = document.getElementById(`plot-${plot.name}`);
    const colors = plot.series.map((series) => rgb(series.color));
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let colored = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (colors.some(([r, g, b]) => Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) +
                                     Math.abs(data[i + 2] - b) < 48)) colored++;
    }
    const url = canvas.toDataURL();
    let digest = 2166136261;
    for (let i = 0; i < url.length; i++) digest = Math.imul(digest ^ url.charCodeAt(i), 16777619);
    out[plot.name] = {points: Number(canvas.dataset.points || 0), colored, digest,
                      width: canvas.width};
  }
  return out;
})()"""


def check_http(url):
    page = urllib.request.urlopen(url, timeout=10)
    check(page.headers["Content-Type"] == "text/html; charset=utf-8",
          f"page Content-Type {page.headers['Content-Type']}")
    check(page.headers["Cache-Control"] == "no-store", "page is cacheable")
    check(b"<canvas" in page.read(), "page has no canvas")
    reply = urllib.request.urlopen(url + "status.json", timeout=10)
    check(reply.headers["Content-Type"] == "application/json",
          f"status.json Content-Type {reply.headers['Content-Type']}")
    check(reply.headers["Cache-Control"] == "no-store", "status.json is cacheable")
    status = json.loads(reply.read())
    for field in ("uptime_s", "time", "requests", "failed", "latency", "gauges",
                  "errors_recorded", "recent_errors"):
        check(field in status, f"status.json has no {field}: {status}")
    check(len(status["latency"]["counts"]) == len(status["latency"]["bounds"]) + 1,
          "latency counts and bounds do not match")
    check("convserve_queue_depth" in status["gauges"], "status.json has no queue depth")


def check_quantiles(browser):
    cases = [("[1, 2, 4], [0, 10, 0, 0], 0.5", 1.5),  # halfway into (1, 2]
             ("[1, 2, 4], [0, 0, 10, 0], 0.9", 3.8),
             ("[1, 2, 4], [10, 0, 0, 0], 0.5", 0.5),  # the first bucket starts at 0
             ("[1, 2, 4], [0, 0, 0, 10], 0.99", 4),  # above every bound: the last bound
             ("[1, 2, 4], [0, 0, 0, 0], 0.5", None)]
    for arguments, expected in cases:
        value = browser.evaluate(f"convserveStatus.quantile({arguments})")
        check(value == expected if expected is None else abs(value - expected) < 1e-9,
              f"quantile({arguments}) = {value}, expected {expected}")


def run(binary, url, profile):
    check_http(url)
    browser = Chromium(binary, profile)
    try:
        browser.open(url)
        browser.wait_for("typeof convserveStatus === 'object'", 30, "the page's script ran")
        check_quantiles(browser)

        browser.wait_for("""convserveStatus.samples >= 5 && convserveStatus.latest !== null &&
                            convserveStatus.latest.rate > 0 && convserveStatus.latest.p50 > 0""",
                         60, "samples with requests plotted")
        browser.wait_for("""(() => { const t = document.getElementById('errors').textContent;
                                    return t.includes('INVALID_ARGUMENT') &&
                                           t.includes('strides'); })()""",
                         30, "the failed call in the recent errors table")
        first = browser.evaluate("({samples: convserveStatus.samples, "
                                 "draws: convserveStatus.draws, canvases: %s})" % CANVASES)
        print(f"status page: {first['samples']} samples, canvases {first['canvases']}")
        for name, canvas in first["canvases"].items():
            check(canvas["width"] > 0, f"the {name} canvas has no size")
            check(canvas["points"] > 0, f"no points drawn on the {name} plot")
            # Five samples span 4 s of the plots' 120: a short line, or a
            # few dots where values are missing.
            check(canvas["colored"] >= 8,
                  f"the {name} plot has no line drawn ({canvas['colored']} pixels)")

        browser.wait_for(f"convserveStatus.samples >= {first['samples'] + 2}", 30,
                         "the page kept sampling")
        second = browser.evaluate("({samples: convserveStatus.samples, "
                                  "draws: convserveStatus.draws, canvases: %s})" % CANVASES)
        print(f"status page: {second['samples']} samples, canvases {second['canvases']}")
        check(second["draws"] > first["draws"], "the plots were not redrawn")
        for name, canvas in second["canvases"].items():
            check(canvas["digest"] != first["canvases"][name]["digest"],
                  f"the {name} plot did not change")
            check(canvas["colored"] >= 8, f"the {name} plot lost its line")

        check(browser.evaluate("convserveStatus.failedPolls") == 0, "a poll failed")
        errors = browser.page_errors()
        check(not errors, "the page reported errors: " + "; ".join(errors))
    finally:
        browser.close()


def main():
    binary, url = sys.argv[1], sys.argv[2]
    # A timeout's SIGTERM unwinds like an error, so Chromium is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated (timeout)"))
    profile = tempfile.mkdtemp(prefix="convserve-chromium-")
    try:
        run(binary, url, profile)
    except CheckFailed as failure:
        print(f"FAIL: {failure}")
        log = os.path.join(profile, "chromium.log")
        if os.path.exists(log):
            # Without a session bus Chromium logs D-Bus errors: not ours.
            lines = [line for line in open(log, errors="replace") if "dbus" not in line]
            print("chromium's log (last lines, D-Bus errors left out):")
            print("".join(lines[-30:]))
        return 1
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print("status page: it draws and updates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
