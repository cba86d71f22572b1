"""What the fault tests that run `pathwise serve` share: stopping the server
at the end and reporting (imported from the scripts' own directory)."""
import signal
import subprocess


def stop(srv, failures, stopped=False):
    """SIGTERM a server still running (SIGCONT first when the test may have
    left it stopped); a server that does not exit is killed and counts as a
    failure."""
    if srv.poll() is not None:
        return
    if stopped:
        srv.send_signal(signal.SIGCONT)
    srv.send_signal(signal.SIGTERM)
    try:
        srv.wait(20)
    except subprocess.TimeoutExpired:
        srv.kill()
        failures.append("the server did not stop on SIGTERM")


def report(failures, errpath, tmp):
    """Print each failure (and the end of the server's stderr when any),
    remove tmp; the exit code."""
    for f in failures:
        print("FAIL: %s" % f)
    if failures:
        with open(errpath, "rb") as f:
            print(f.read()[-1500:].decode(errors="replace"))
    subprocess.run(["rm", "-rf", tmp])
    print("%d failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0
