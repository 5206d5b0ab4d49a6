#!/usr/bin/env python3
"""browser.py - pbftd's status page in headless Chromium (suite 'browser').

A 4-replica cluster on 127.0.0.1 with http_listen and http_tokens; the page
is opened as /#token=TOKEN and driven through Selenium (Debian's
python3-selenium and chromium-driver). Checks, each bounded in time:
  - four replicas shown running;
  - requests submitted through the API raise the executed count shown, and
    the requests-per-second chart's peak;
  - a replica that stops answering (SIGSTOP) is shown down, then running
    again (SIGCONT); one killed (SIGKILL) is shown restarted;
  - pbftd itself stopped (SIGSTOP) is shown as "pbftd not answering", and
    the page recovers when it goes on; pbftd then exits 0.
Skips (exit 77) without selenium or chromedriver. The whole run is bounded
by PBFT_BROWSER_LIMIT_S (default 90 s, times PBFT_TIMEOUT_MULT).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

build = os.environ["PBFT_BUILD"]
mult = int(os.environ.get("PBFT_TIMEOUT_MULT", "1"))
deadline = time.monotonic() + float(
    os.environ.get("PBFT_BROWSER_LIMIT_S", "90")) * mult
TOKEN = "browser-token-0123456789"

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:
    print("SKIP: python3-selenium is not installed")
    sys.exit(77)
driver_bin = shutil.which("chromedriver")
if driver_bin is None:
    print("SKIP: chromium-driver is not installed")
    sys.exit(77)


def free_base():
    """A base port with 10 free ports above it (127.0.0.1)."""
    for base in range(21000 + (os.getpid() % 500) * 20, 40000, 20):
        try:
            socks = []
            for p in range(base, base + 10):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            for s in socks:
                s.close()
            return base
        except OSError:
            for s in socks:
                s.close()
    raise SystemExit("no free ports")


def wait_for(what, fn, seconds):
    end = min(time.monotonic() + seconds * mult, deadline)
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the page may be mid-redraw
            last = e
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def api(url, path, body=None):
    req = urllib.request.Request(
        url + path, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + TOKEN},
        method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10 * mult) as r:
        return json.load(r)


def states(drv):
    rows = drv.find_elements(By.CSS_SELECTOR, "#replicas tr")
    return {r.get_attribute("data-id"): r.get_attribute("data-state")
            for r in rows}


def main():
    tmp = tempfile.mkdtemp(prefix="pbft-browser.")
    base = free_base()
    hport = base + 8
    url = "http://127.0.0.1:%d" % hport
    conf = os.path.join(tmp, "c")
    subprocess.run([os.path.join(build, "pbftctl/pbftctl"), "init", "-n",
                    "4", "--base-port", str(base), "-o", conf], check=True,
                   stdout=subprocess.DEVNULL)
    tokens = os.path.join(conf, "http.tokens")
    fd = os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, ("browser %s\n" % TOKEN).encode())
    os.close(fd)
    ini = os.path.join(conf, "cluster.ini")
    text = open(ini).read().replace(
        "[cluster]\n", "[cluster]\nhttp_listen = 127.0.0.1:%d\n"
        "http_tokens = http.tokens\n" % hport, 1)
    open(ini, "w").write(text)
    log = open(os.path.join(tmp, "pbftd.log"), "w")
    pbftd = subprocess.Popen([os.path.join(build, "pbftd/pbftd"), "-c", ini],
                             stdout=log, stderr=subprocess.STDOUT)
    drv = None
    ok = False
    try:
        wait_for("cluster ready", lambda: api(url, "/v1/status")["ready"], 30)
        opts = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--user-data-dir=" +
                  os.path.join(tmp, "chrome")):
            opts.add_argument(a)
        drv = webdriver.Chrome(service=Service(driver_bin), options=opts)
        drv.set_page_load_timeout(20 * mult)
        drv.get(url + "/#token=" + TOKEN)
        print("ok: page loaded")

        wait_for("four replicas shown running", lambda: states(drv) == {
            "0": "running", "1": "running", "2": "running",
            "3": "running"}, 15)
        assert "pbftd answering" in drv.find_element(By.ID, "conn").text
        print("ok: four replicas shown running")

        before = int(drv.find_element(By.ID, "executed").text)
        for i in range(5):
            assert api(url, "/v1/submit", {"data": "browser %d" % i})["ok"]
        wait_for("executed count to rise by 5", lambda: int(
            drv.find_element(By.ID, "executed").text) >= before + 5, 10)
        print("ok: executed count rose from %d after 5 submits" % before)
        wait_for("the chart's peak above 0 req/s", lambda: float(
            drv.find_element(By.ID, "rmax").text) > 0, 5)
        print("ok: chart peak %s req/s" % drv.find_element(By.ID, "rmax").text)

        pid = next(r["pid"] for r in api(url, "/v1/status")["replicas"]
                   if r["id"] == 2)
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for("node 2 shown down",
                     lambda: states(drv).get("2") not in (None, "running"), 10)
            print("ok: a stopped replica shown %s" % states(drv)["2"])
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for("node 2 shown back", lambda: states(drv).get("2") ==
                 "running", 15)
        print("ok: shown running again")

        os.kill(pid, signal.SIGKILL)
        wait_for("node 2 shown restarted", lambda: drv.find_element(
            By.CSS_SELECTOR, '#replicas tr[data-id="2"]').get_attribute(
                "data-restarts") == "1" and states(drv).get("2") ==
            "running", 15)
        print("ok: a killed replica shown restarted and running")

        pbftd.send_signal(signal.SIGSTOP)
        try:
            wait_for("pbftd not answering", lambda: "pbftd not answering" in
                     drv.find_element(By.ID, "conn").text, 10)
            print("ok: 'pbftd not answering' shown")
        finally:
            pbftd.send_signal(signal.SIGCONT)
        wait_for("pbftd answering again", lambda: "pbftd answering" ==
                 drv.find_element(By.ID, "conn").text, 10)
        print("ok: answering again")
        ok = True
    finally:
        if drv is not None:
            drv.quit()
        pbftd.send_signal(signal.SIGCONT)
        pbftd.terminate()
        try:
            pbftd.wait(15 * mult)
        except subprocess.TimeoutExpired:
            pbftd.kill()
            pbftd.wait()
        log.close()
        if ok and pbftd.returncode != 0:
            print("FAIL: pbftd exited with status %d" % pbftd.returncode)
            ok = False
        if not ok:
            print("--- pbftd log (test failed) ---")
            print("".join(open(os.path.join(tmp, "pbftd.log")).readlines()
                          [-60:]))
        if not os.environ.get("PBFT_TEST_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        sys.exit(1)
    print("browser: all checks passed")


main()
