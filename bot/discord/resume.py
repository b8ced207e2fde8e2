"""At start: finish the Anime-fy jobs an earlier process left (bot/discord/jobs.py); the
`/anime` jobs are resumed by the job runner itself (`JobRunner.resume`, bot/discord/outlet.py).

A job younger than RESUME_WITHIN_S is converted again (what finished before is a cache hit)
and answered through its interaction's follow-up webhook: the result replaces the "thinking"
message, or comes as a new message after a "restarting" notice. An older one can no longer be
answered (its token has expired): it is dropped with a recorded failure. A job tried
MAX_ATTEMPTS times is given up, with one message to the person. The job runner decides which
(`JobRunner.end_of`) and keeps the books.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord

from bot.discord.context_menu import menu
from bot.discord.conversion import Converter, Origin
from bot.discord.jobs import RESUME_WITHIN_S, StoredAttachment, run_durably
from bot.discord.respond import Followup
from i18n import error_message, t
from service.convert import new_request_id
from service.errors import InternalError
from service.lifecycle import Expired, Job

log = logging.getLogger("animebot.discord")


def resume_jobs(
    client: discord.Client,
    converter: Converter,
    titles: dict[str, str],
    stored: list[Job],
) -> set[asyncio.Task[None]]:
    """One task per job left (the caller tracks them, so a stop can wait for them)."""
    tasks = {
        asyncio.create_task(
            _resume(client, converter, titles, job), name=f"resume-{job.request_id}"
        )
        for job in stored
    }
    if stored:
        log.info("resuming %d Discord job(s) left by the previous run", len(stored))
    return tasks


async def _resume(
    client: discord.Client, converter: Converter, titles: dict[str, str], job: Job
) -> None:
    runner = converter.runner
    reply = job.outlet
    end = runner.end_of(job, answerable_s=RESUME_WITHIN_S)
    if isinstance(end, Expired):  # the token cannot answer any more: nobody to tell
        log.warning("job %s: interaction expired before the restart; dropped", job.request_id)
        await runner.refuse(job, end)
        await runner.finish(job)
        return
    followup = Followup.resumed(
        client, int(reply["application_id"]), str(reply["token"]), reply.get("thinking_id")
    )
    if end is not None:
        log.warning("job %s: given up after %d attempt(s)", job.request_id, job.attempts)
        await runner.refuse(job, end)
        try:
            await followup.error(t("job.gave_up", job.lang))
        except discord.HTTPException as exc:
            log.info("job %s: could not say so (HTTP %s)", job.request_id, exc.status)
        await runner.finish(job)
        return
    again = await runner.begin_attempt(job)
    if again is None:
        return
    job = again
    user_id = int(job.user_id)
    chat = None if job.chat_id is None else int(job.chat_id)
    origin = Origin(user_id, chat, int(reply.get("filesize_limit") or 8 * 1024 * 1024))
    sources = [StoredAttachment.from_dict(a, client.http) for a in job.source["attachments"]]

    async def work() -> None:
        await menu(
            converter,
            titles,
            followup,
            origin,
            sources,
            job.lang,
            skipped_over_limit=int(job.source.get("skipped_over_limit", 0)),
            skipped_not_images=int(job.source.get("skipped_not_images", 0)),
            key=job.request_id,
        )

    try:
        await run_durably(runner, followup, job.lang, job, work)
    except Exception as exc:  # no command tree here to answer it
        ref = new_request_id()
        log.error(
            "job %s failed after the restart, reference %s", job.request_id, ref, exc_info=exc
        )
        with contextlib.suppress(discord.HTTPException):
            await followup.error(error_message(InternalError(ref), job.lang))
