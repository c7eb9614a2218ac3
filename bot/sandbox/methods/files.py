"""``files.getUploadURLExternal``, ``files.completeUploadExternal`` and ``files.info``: Slack's
two-step upload (the bytes go to the upload URL between the two calls)."""

from __future__ import annotations

import string

from bot.sandbox.args import (
    Args,
    epoch,
    error_lines,
)
from bot.sandbox.records import (
    JSON,
    ApiError,
    Channel,
    UploadedFile,
)
from bot.sandbox.workspace import Workspace


class FilesMethods(Workspace):
    def _files_get_upload_url_external(self, args: Args) -> JSON:
        filename = args.text("filename")
        length_text = args.text("length")
        if not filename or length_text is None:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_lines("filename and length are required"),
            )
        length = args.number("length", 0)
        if length <= 0:
            raise ApiError("missing_argument")
        alt_txt = args.text("alt_txt")
        if alt_txt and len(alt_txt) > 1000:
            raise ApiError("alt_txt_too_large")
        upload_token = "".join(self._random.choices(string.ascii_letters + string.digits, k=32))
        found = UploadedFile(
            id=self._new_id("F", 10),
            filename=filename,
            length=length,
            upload_token=upload_token,
            user=self.bot_user_id,
            created=epoch(self.now()),
            alt_txt=alt_txt,
            snippet_type=args.text("snippet_type"),
        )
        self._files[found.id] = found
        return {"upload_url": f"{self.base_url}/upload/v1/{upload_token}", "file_id": found.id}

    def _files_complete_upload_external(self, args: Args) -> JSON:
        items = args.decoded("files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise ApiError("invalid_arguments", response_metadata=error_lines("files is required"))
        targets: list[str] = []
        channel_id = args.text("channel_id")
        if channel_id:
            targets.append(channel_id)
        targets += [c.strip() for c in (args.text("channels") or "").split(",") if c.strip()]
        channels: list[Channel] = []
        for ref in dict.fromkeys(targets):
            channel = self._channels.get(ref)
            if channel is None or (channel.is_private and self.bot_user_id not in channel.members):
                raise ApiError("invalid_channel")
            if channel.is_archived or self.bot_user_id not in channel.members:
                raise ApiError("posting_to_channel_denied")
            channels.append(channel)
        uploads: list[tuple[UploadedFile, str | None]] = []
        for item in items:
            found = self._files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if found is None or found.completed or found.content is None:
                raise ApiError("file_not_found")
            title = item.get("title")
            uploads.append((found, str(title) if title is not None else None))
        comment = args.text("initial_comment")
        thread_ts = args.text("thread_ts") or None
        for found, title in uploads:
            found.completed = True
            found.title = title or found.filename
            found.channels = [c.id for c in channels]
            found.initial_comment = comment
            found.thread_ts = thread_ts
        files_json = [self._file_json(f) for f, _ in uploads]
        for channel in channels:
            posted = self._post(channel, comment or "", None, None, thread_ts, files=files_json)
            for found, _ in uploads:
                found.shares[channel.id] = posted.ts
        return {"files": [{"id": f.id, "title": f.title} for f, _ in uploads]}

    def _files_info(self, args: Args) -> JSON:
        found = self._files.get(args.text("file") or "")
        if found is None or not found.completed:
            raise ApiError("file_not_found")
        return {"file": self._file_json(found), "comments": [], "response_metadata": {}}
