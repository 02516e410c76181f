"""Demo teams and one user per role."""

from typing import TextIO

from accounts.models import Team, User
from accounts.services import user_create

DEMO_TEAMS = [
    ("E-commerce ops", "电商运营", False),
    ("Brand marketing", "品牌市场", False),
    ("MarTech support", "营销技术支持", True),
]
# username, role, team, password, display name, pii, language
DEMO_USERS = [
    (
        "requester",
        "requester",
        "E-commerce ops",
        "requester-demo-1",
        "王小红 Wang Xiaohong",
        False,
        "zh-hans",
    ),
    ("brand", "requester", "Brand marketing", "brand-demo-1", "李明 Li Ming", False, "en"),
    ("agent", "agent", "MarTech support", "agent-demo-1", "张伟 Zhang Wei", False, "zh-hans"),
    ("agent2", "agent", "MarTech support", "agent2-demo-1", "陈静 Chen Jing", False, "en"),
    ("manager", "manager", "MarTech support", "manager-demo-1", "刘洋 Liu Yang", True, "zh-hans"),
    ("admin", "admin", "MarTech support", "admin-demo-1", "IT Admin", True, "en"),
]


def seed(stdout: TextIO, small: bool = False) -> None:
    for name, name_zh, is_support in DEMO_TEAMS:
        Team.objects.update_or_create(name=name, defaults={"name_zh": name_zh, "is_support": is_support})
    stdout.write("Demo logins (username / password / role / language):")
    for username, role, team, password, display, pii, language in DEMO_USERS:
        if not User.objects.filter(username=username).exists():
            user_create(
                username=username,
                role=role,
                team_name=team,
                password=password,
                email=f"{username}@martech.example.com",
                pii=pii,
                display_name=display,
                language=language,
            )
        stdout.write(f"  {username:<10} {password:<18} {role:<10} {language}")
