"""``views.open``, ``views.push``, ``views.update`` and ``views.publish``."""

from __future__ import annotations

from bot.sandbox.args import (
    Args,
    error_lines,
)
from bot.sandbox.records import (
    JSON,
    VIEW_STACK_LIMIT,
    ApiError,
)
from bot.sandbox.workspace import Workspace


class ViewsMethods(Workspace):
    def _views_open(self, args: Args) -> JSON:
        trigger = self._exchange_trigger(args)
        view = self._checked_view(args, kind="modal")
        self._check_external_id(view)
        trigger.exchanged = True
        for old in self._modal_stacks.get(trigger.user, []):
            self._views[old].is_open = False
        created = self._create_view(trigger.user, view, root=None)
        self._modal_stacks[trigger.user] = [created.id]
        return {"view": self._view_json(created)}

    def _views_push(self, args: Args) -> JSON:
        trigger = self._exchange_trigger(args)
        view = self._checked_view(args, kind="modal")
        stack = self._modal_stacks.get(trigger.user, [])
        if not stack:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_lines("views.push needs a modal open for this user"),
            )
        if len(stack) >= VIEW_STACK_LIMIT:
            raise ApiError("push_limit_reached")
        self._check_external_id(view)
        trigger.exchanged = True
        created = self._create_view(trigger.user, view, root=stack[0])
        created.previous_view_id = stack[-1]
        stack.append(created.id)
        return {"view": self._view_json(created)}

    def _views_update(self, args: Args) -> JSON:
        view_id, external_id = args.text("view_id"), args.text("external_id")
        if not view_id and not external_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_lines("either view_id or external_id is required"),
            )
        found = (
            self._views.get(view_id)
            if view_id
            else next((v for v in self._views.values() if v.external_id == external_id), None)
        )
        if found is None or not found.is_open:
            raise ApiError("not_found")
        view = self._checked_view(args, kind=found.type)
        given_hash = args.text("hash")
        if given_hash and given_hash != found.hash:
            raise ApiError("hash_conflict")
        self._check_external_id(view, except_view=found.id)
        found.payload = view
        found.external_id = str(view.get("external_id") or found.external_id)
        found.hash = self._new_hash()
        return {"view": self._view_json(found)}

    def _views_publish(self, args: Args) -> JSON:
        user_id = args.text("user_id")
        person = self._users.get(user_id or "")
        if person is None or person.deleted:
            raise ApiError("user_not_found")
        view = self._checked_view(args, kind="home")
        existing_id = self._home_views.get(person.id)
        given_hash = args.text("hash")
        if existing_id is not None:
            existing = self._views[existing_id]
            if given_hash and given_hash != existing.hash:
                raise ApiError("hash_conflict")
            self._check_external_id(view, except_view=existing.id)
            existing.payload = view
            existing.external_id = str(view.get("external_id") or "")
            existing.hash = self._new_hash()
            existing.state_values = {}
            return {"view": self._view_json(existing)}
        self._check_external_id(view)
        created = self._create_view(person.id, view, root=None)
        self._home_views[person.id] = created.id
        return {"view": self._view_json(created)}
