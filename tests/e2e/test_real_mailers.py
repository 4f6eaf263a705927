"""The mailers hosted software really uses, each pointed at scriptmail by its own setting, with its
own default arguments, and with no SCRIPTMAIL_* variable: the command finds the daemon through
/etc/scriptmail (an overlay of the test's directory in a private mount namespace)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_sendmail_system import daemon_file
from tests.support import namespace
from tests.support.gateway import RunningGateway, wait_status
from tests.support.sink import Sink

SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))
PHPMAILER = Path("/usr/share/php/libphp-phpmailer/autoload.php")
SYMFONY_MAILER = Path("/usr/share/php/Symfony/Component/Mailer/autoload.php")
NODEMAILER = "nodemailer@6.10.1"

pytestmark = pytest.mark.skipif(namespace.available() is not None, reason=f"{namespace.available()}")


@pytest.fixture
def run_as_system(gateway: RunningGateway, tmp_path: Path):
    """Run argv as a web server or system program would: clean environment, /etc/scriptmail installed."""
    etc = namespace.system_dir(tmp_path / "etc", {"scriptmail.toml": daemon_file(gateway)})

    def run(argv: list[str], data: bytes = b"", cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        result = subprocess.run(
            namespace.isolated({"/etc": etc}, argv), input=data, capture_output=True, timeout=120, cwd=cwd,
            env={"PATH": namespace.CLEAN_PATH, "HOME": str(tmp_path)},
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        return result

    return run


def delivered(gateway: RunningGateway, sink: Sink, recipient: str, subject: bytes):
    (received,) = sink.wait_for(1)
    assert received.recipients == [recipient]
    assert b"Subject: " + subject in received.data
    stripped = received.raw.replace(b"\r\n", b"")
    assert b"\r" not in stripped and b"\n" not in stripped
    (row,) = wait_status(gateway.engine, "sent", 1)
    assert row["origin"] == "sendmail"
    return received


def needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")


def test_php_mail_with_sendmail_path_set_as_an_installer_would(gateway, sink, run_as_system, tmp_path) -> None:
    needs("php")
    script = tmp_path / "contact.php"
    script.write_text(
        '<?php exit(mail("buyer@sink.test", "PHP mail", "Hello from mail().\\n.\\nA dot.", '
        '"From: shop <web@shop.example>") ? 0 : 1);'
    )
    run_as_system(["php", "-d", f"sendmail_path={SENDMAIL} -t -i", "-d", "mail.add_x_header=On", str(script)])
    received = delivered(gateway, sink, "buyer@sink.test", b"PHP mail")
    assert b"X-PHP-Originating-Script: " in received.data and b"contact.php" in received.data
    assert received.data.endswith(b"Hello from mail().\r\n.\r\nA dot.\r\n")


def test_phpmailer_is_sendmail_with_a_sender(gateway, sink, run_as_system, tmp_path) -> None:
    if not PHPMAILER.exists():
        pytest.skip("Debian's libphp-phpmailer is not installed (.ci/run installs it)")
    script = tmp_path / "phpmailer.php"
    script.write_text(f"""<?php
require '{PHPMAILER}';
$mail = new PHPMailer\\PHPMailer\\PHPMailer(true);
$mail->isSendmail();
$mail->Sendmail = '{SENDMAIL}';
$mail->setFrom('web@shop.example', 'Shop');
$mail->addAddress('buyer@sink.test');
$mail->Subject = 'PHPMailer';
$mail->Body = 'Sent by PHPMailer.';
$mail->send();
""")
    run_as_system(["php", str(script)])
    received = delivered(gateway, sink, "buyer@sink.test", b"PHPMailer")
    assert received.mail_from == "web@shop.example"  # PHPMailer passes -f<sender>


def test_symfony_mailer_sendmail_transport_speaks_bs(gateway, sink, run_as_system, tmp_path) -> None:
    if not SYMFONY_MAILER.exists():
        pytest.skip("Debian's php-symfony-mailer is not installed (.ci/run installs it)")
    script = tmp_path / "symfony.php"
    script.write_text(f"""<?php
require '{SYMFONY_MAILER}';
require '/usr/share/php/Symfony/Component/Mime/autoload.php';
use Symfony\\Component\\Mailer\\Transport;
use Symfony\\Component\\Mailer\\Mailer;
use Symfony\\Component\\Mime\\Email;
// The transport's default command is "/usr/sbin/sendmail -bs"; only the program's path changes.
$transport = Transport::fromDsn('sendmail://default?command=' . urlencode('{SENDMAIL} -bs'));
(new Mailer($transport))->send((new Email())->from('web@shop.example')->to('buyer@sink.test')
    ->subject('Symfony')->text("Sent over -bs.\\n.\\nA dot."));
""")
    run_as_system(["php", str(script)])
    received = delivered(gateway, sink, "buyer@sink.test", b"Symfony")
    assert b"Sent over -bs.\r\n.\r\nA dot." in received.data


def test_a_python_program_driving_sendmail_t_i(gateway, sink, run_as_system, tmp_path) -> None:
    script = tmp_path / "notify.py"
    script.write_text(f"""
import subprocess
from email.message import EmailMessage
message = EmailMessage()
message["From"] = "web@shop.example"
message["To"] = "buyer@sink.test"
message["Subject"] = "Python"
message.set_content("Sent from Python.")
subprocess.run(["{SENDMAIL}", "-t", "-i"], input=message.as_bytes(), check=True)
""")
    run_as_system([sys.executable, "-I", str(script)])
    delivered(gateway, sink, "buyer@sink.test", b"Python")


@pytest.fixture(scope="session")
def nodemailer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    prefix = tmp_path_factory.mktemp("node")
    result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), NODEMAILER],
                            capture_output=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"cannot install {NODEMAILER} from npm: {result.stderr.decode(errors='replace')[-300:]}")
    yield prefix / "node_modules"


def test_nodemailer_sendmail_transport(gateway, sink, run_as_system, tmp_path, nodemailer) -> None:
    script = tmp_path / "send.js"
    script.write_text(f"""
const nodemailer = require({str(nodemailer / 'nodemailer')!r});
const transport = nodemailer.createTransport({{ sendmail: true, newline: 'unix', path: {SENDMAIL!r} }});
transport.sendMail({{ from: 'web@shop.example', to: 'buyer@sink.test', subject: 'Node', text: 'Sent by nodemailer.' }})
  .then(() => process.exit(0), (error) => {{ console.error(error); process.exit(1); }});
""")
    run_as_system(["node", str(script)])
    received = delivered(gateway, sink, "buyer@sink.test", b"Node")
    assert received.mail_from == "web@shop.example"


def test_mailx_s_nail_with_its_mta_setting(gateway, sink, run_as_system) -> None:
    needs("s-nail")
    run_as_system(["s-nail", "-n", "-S", f"mta={SENDMAIL}", "-S", "sendwait", "-s", "mailx", "buyer@sink.test"],
                  data=b"Sent by mailx.\n")
    delivered(gateway, sink, "buyer@sink.test", b"mailx")


def test_debian_cron_mails_a_jobs_output_through_usr_sbin_sendmail(gateway, sink, tmp_path) -> None:
    """cron has no setting for its mailer: it runs /usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem
    <MAILTO>, so the test lays our command over /usr/sbin/sendmail, as the installer's alternative does."""
    needs("cron")
    etc = namespace.system_dir(tmp_path / "etc", {"scriptmail.toml": daemon_file(gateway)})
    (etc / "crontab").write_text("SHELL=/bin/sh\nMAILTO=admin@sink.test\n@reboot root echo backup finished\n")
    (etc / "crontab").chmod(0o644)
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "sendmail").symlink_to(SENDMAIL)
    argv = namespace.isolated({"/etc": etc, "/usr/sbin": sbin}, ["sh", "-c", "mount -t tmpfs run /run && exec cron -f"])
    cron = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={"PATH": namespace.CLEAN_PATH})
    try:
        (received,) = sink.wait_for(1, timeout=60)
    finally:
        cron.terminate()
        cron.wait(10)
    assert received.recipients == ["admin@sink.test"]
    assert b"Subject: Cron <root@" in received.data and received.data.endswith(b"\r\n\r\nbackup finished\r\n")


PYRAMID_MAILER = "pyramid-mailer==0.15.1"


@pytest.fixture(scope="session")
def pyramid_mailer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python mailer from PyPI with a sendmail delivery (repoze.sendmail's), installed apart from the project."""
    target = tmp_path_factory.mktemp("pyramid-mailer")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), PYRAMID_MAILER],
                            capture_output=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"cannot install {PYRAMID_MAILER}: {result.stderr.decode(errors='replace')[-300:]}")
    return target


def test_pyramid_mailer_sendmail_delivery(gateway, sink, run_as_system, tmp_path, pyramid_mailer) -> None:
    script = tmp_path / "pyramid_send.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(pyramid_mailer)!r})
from pyramid_mailer.mailer import Mailer
from pyramid_mailer.message import Message
mailer = Mailer(sendmail_app={SENDMAIL!r})  # its template adds -t -i -f <sender>
mailer.send_immediately_sendmail(Message(subject="Pyramid", sender="web@shop.example",
                                         recipients=["buyer@sink.test"], body="Sent by pyramid_mailer."))
""")
    run_as_system([sys.executable, "-I", str(script)])
    received = delivered(gateway, sink, "buyer@sink.test", b"Pyramid")
    assert received.mail_from == "web@shop.example"
