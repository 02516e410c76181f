from django.apps import AppConfig


class SharedConfig(AppConfig):
    """The project's shared layer (config/): installs what must hold for every app's API."""

    name = "config"
    label = "shared_config"

    def ready(self) -> None:
        from config.inputs import install_strict_json_types

        install_strict_json_types()
