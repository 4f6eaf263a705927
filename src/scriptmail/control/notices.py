"""The mail scriptmail itself sends to a hosting's owner when the policy engine blocks it.

Pure: builds the message; the store queues it as system mail, which no block ever holds.
"""

from __future__ import annotations

import email.policy
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from scriptmail.model import HostingState

# CRLF line ends, lines folded at 78 (quoted-printable body lines stay within RFC 2045's 76).
_POLICY = email.policy.SMTP

_TEXT = {
    "en": {
        "subject": "[{hosting}] E-mail from your scripts blocked ({state})",
        "body": (
            "Hello,\n\n"
            "The e-mail sent by the scripts of your hosting {hosting} has been blocked automatically "
            "on {when}.\n\nWhat was detected: {reason}.\n\n"
            "Nothing has been deleted: the messages already waiting, and those your scripts send from now "
            "on, are kept for {hold_hours} hours.\n\n"
            "What to do:\n"
            "1. Find the script that sends this mail (the customer area lists which script sent each message) "
            "and fix or remove it; change the passwords of the site if it was hacked.\n"
            "2. Then purge the waiting messages (they are deleted and sending resumes by itself){unblock}.\n\n"
            "-- \nThe mail platform of {platform}\n"
        ),
        "unblock_bounce": ", or unblock sending if the addresses are right (the allowed share of errors is doubled)",
        "unblock_other": "",
    },
    "es": {
        "subject": "[{hosting}] Correo de sus scripts bloqueado ({state})",
        "body": (
            "Hola:\n\n"
            "El correo enviado por los scripts de su alojamiento {hosting} se ha bloqueado automáticamente "
            "el {when}.\n\nQué se ha detectado: {reason}.\n\n"
            "No se ha borrado nada: los mensajes en espera, y los que sus scripts envíen a partir de ahora, "
            "se conservan {hold_hours} horas.\n\n"
            "Qué hacer:\n"
            "1. Localice el script que envía este correo (el área de cliente indica qué script envió cada "
            "mensaje) y corríjalo o elimínelo; cambie las contraseñas del sitio si ha sido atacado.\n"
            "2. Después depure los mensajes en espera (se borran y el envío se reanuda solo){unblock}.\n\n"
            "-- \nLa plataforma de correo de {platform}\n"
        ),
        "unblock_bounce": ", o desbloquee el envío si las direcciones son correctas (el porcentaje de errores "
        "permitido se duplica)",
        "unblock_other": "",
    },
    "fr": {
        "subject": "[{hosting}] E-mails de vos scripts bloqués ({state})",
        "body": (
            "Bonjour,\n\n"
            "Les e-mails envoyés par les scripts de votre hébergement {hosting} ont été bloqués "
            "automatiquement le {when}.\n\nCe qui a été détecté : {reason}.\n\n"
            "Rien n'a été supprimé : les messages en attente, et ceux que vos scripts enverront désormais, "
            "sont conservés {hold_hours} heures.\n\n"
            "Que faire :\n"
            "1. Trouvez le script qui envoie ces e-mails (l'espace client indique quel script a envoyé chaque "
            "message) et corrigez-le ou supprimez-le ; changez les mots de passe du site s'il a été piraté.\n"
            "2. Purgez ensuite les messages en attente (ils sont supprimés et l'envoi reprend de lui-même)"
            "{unblock}.\n\n"
            "-- \nLa plateforme e-mail de {platform}\n"
        ),
        "unblock_bounce": ", ou débloquez l'envoi si les adresses sont bonnes (la part d'erreurs admise est "
        "doublée)",
        "unblock_other": "",
    },
}


def block_notice(
    *,
    hosting: str,
    state: HostingState,
    reason: str,
    language: str,
    sender: str,
    recipient: str,
    platform: str,
    hold_hours: float,
    now: float,
) -> tuple[str, bytes]:
    """The owner's notification of an automatic block, in the hosting's language (English otherwise):
    its subject and the whole message."""
    text = _TEXT.get(language, _TEXT["en"])
    when = datetime.fromtimestamp(now, timezone.utc)
    values = {
        "hosting": hosting,
        "state": state.value,
        "reason": reason.rstrip("."),
        "when": when.strftime("%Y-%m-%d %H:%M UTC"),
        "hold_hours": f"{hold_hours:g}",
        "platform": platform,
        "unblock": text["unblock_bounce"] if state is HostingState.BOUNCE else text["unblock_other"],
    }
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = recipient
    subject = text["subject"].format(**values)
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain=platform)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    message.set_content(text["body"].format(**values), cte="quoted-printable")
    return subject, bytes(message)
