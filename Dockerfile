# scriptmail as a container: every part in one process, as an unprivileged user.
# Build: docker build -t scriptmail .   Run two nodes with PostgreSQL: docker compose up (compose.yaml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The pinned dependencies first, so that a change of the code alone does not reinstall them.
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN python -m venv /opt/scriptmail \
    && /opt/scriptmail/bin/pip install -c constraints.txt . \
    && rm -rf /src

# No root inside: the SMTP port is 2525 (map 587 or 25 to it from the host); no capability is needed.
RUN groupadd --system --gid 10025 scriptmail \
    && useradd --system --uid 10025 --gid scriptmail --home-dir /var/lib/scriptmail --no-create-home \
       --shell /usr/sbin/nologin scriptmail \
    && install -d -o scriptmail -g scriptmail -m 0750 /var/lib/scriptmail \
    && install -d -o scriptmail -g scriptmail -m 0755 /run/scriptmail /var/spool/scriptmail/maildrop

ENV PATH=/opt/scriptmail/bin:$PATH \
    SCRIPTMAIL_DATABASE_URL=sqlite:////var/lib/scriptmail/scriptmail.db \
    SCRIPTMAIL_INTAKE__LISTEN=0.0.0.0:2525 \
    SCRIPTMAIL_INTAKE__SOCKET=/run/scriptmail/intake.sock \
    SCRIPTMAIL_INTAKE__MAILDROP=/var/spool/scriptmail/maildrop \
    SCRIPTMAIL_WEB__LISTEN=0.0.0.0:8025

USER scriptmail:scriptmail
WORKDIR /var/lib/scriptmail
VOLUME ["/var/lib/scriptmail", "/var/spool/scriptmail/maildrop"]
EXPOSE 2525 8025 8026

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 2525), 3).close()"]

STOPSIGNAL SIGTERM
CMD ["scriptmail", "serve", "--no-demo"]
