"""``api.test``, ``auth.test``, ``team.info``, ``bots.info``, ``users.*`` and
``usergroups.*``."""

from __future__ import annotations

from bot.sandbox.args import (
    Args,
    epoch,
    paginate,
    recorded_args,
)
from bot.sandbox.records import (
    JSON,
    ApiError,
    Usergroup,
)
from bot.sandbox.workspace import Workspace


class UsersMethods(Workspace):
    def _api_test(self, args: Args) -> JSON:
        return {"args": recorded_args(args.data)}

    def _auth_test(self, args: Args) -> JSON:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _team_info(self, args: Args) -> JSON:
        return {
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "domain": self.team_domain,
                "email_domain": "example.com",
                "icon": {"image_default": True},
                "url": f"https://{self.team_domain}.slack.com/",
            }
        }

    def _bots_info(self, args: Args) -> JSON:
        bot = args.text("bot") or self.bot_id
        owner = next((u for u in self._users.values() if u.bot_id == bot), None)
        if owner is None:
            raise ApiError("bot_not_found")
        return {
            "bot": {
                "id": bot,
                "deleted": owner.deleted,
                "name": owner.name,
                "updated": owner.updated,
                "app_id": self.app_id if bot == self.bot_id else self._new_id("A", 10),
                "user_id": owner.id,
                "icons": {"image_48": f"https://avatars.example.com/{bot}_48.png"},
            }
        }

    def _users_info(self, args: Args) -> JSON:
        person = self._users.get(args.text("user") or "")
        if person is None:
            raise ApiError("user_not_found")
        return {"user": self._user_json(person)}

    def _users_list(self, args: Args) -> JSON:
        page, cursor = paginate(list(self._users.values()), args, default_limit=200)
        return {
            "members": [self._user_json(u) for u in page],
            "cache_ts": epoch(self.now()),
            "response_metadata": {"next_cursor": cursor},
        }

    def _users_lookup_by_email(self, args: Args) -> JSON:
        email = (args.text("email") or "").lower()
        person = next(
            (u for u in self._users.values() if u.email and u.email.lower() == email), None
        )
        if person is None:
            raise ApiError("users_not_found")
        return {"user": self._user_json(person)}

    def _usergroup_json(self, group: Usergroup, *, include_users: bool) -> JSON:
        data: JSON = {
            "id": group.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": group.name,
            "description": group.description,
            "handle": group.handle,
            "is_external": False,
            "date_create": group.created,
            "date_update": group.created,
            "date_delete": group.created if group.disabled else 0,
            "auto_type": None,
            "created_by": group.created_by,
            "updated_by": group.created_by,
            "deleted_by": group.created_by if group.disabled else None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(group.users),
        }
        if include_users:
            data["users"] = list(group.users)
        return data

    def _usergroups_list(self, args: Args) -> JSON:
        include_disabled = args.flag("include_disabled")
        include_users = args.flag("include_users")
        return {
            "usergroups": [
                self._usergroup_json(g, include_users=include_users)
                for g in self._usergroups.values()
                if include_disabled or not g.disabled
            ]
        }

    def _usergroups_users_list(self, args: Args) -> JSON:
        group = self._usergroups.get(args.text("usergroup") or "")
        if group is None or (group.disabled and not args.flag("include_disabled")):
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}
