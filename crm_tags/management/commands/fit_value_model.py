import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm_tags.value import TIME_UNIT_DAYS, ValueModelError
from crm_tags.value.store import value_model_fit


class Command(BaseCommand):
    help = (
        "Fit the BG/NBD and Gamma-Gamma models on the orders up to a day and store every customer's RFM "
        "scores, segment, expected purchases, P(alive), expected spend, 12-month CLV and lead score."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", required=True, help="the calibration end, a day: YYYY-MM-DD")
        parser.add_argument(
            "--time-unit",
            choices=sorted(TIME_UNIT_DAYS),
            default=None,
            help=f"the models' time unit (default: CRM_VALUE_TIME_UNIT, {settings.CRM_VALUE_TIME_UNIT})",
        )

    def handle(self, *args, **options) -> None:
        try:
            as_of = datetime.date.fromisoformat(options["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of must be a day as YYYY-MM-DD, not {options['as_of']!r}") from exc
        try:
            fit = value_model_fit(as_of=as_of, time_unit=options["time_unit"])
        except ValueModelError as exc:
            raise CommandError(str(exc)) from exc
        bg, gg = fit.params["bg_nbd"], fit.params["gamma_gamma"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Fitted as of {fit.as_of} in {fit.time_unit} on {fit.customers} customers in {fit.seconds:.2f}s: "
                f"BG/NBD r={bg['r']:.3f} alpha={bg['alpha']:.3f} a={bg['a']:.3f} b={bg['b']:.3f}; "
                f"Gamma-Gamma p={gg['p']:.2f} q={gg['q']:.2f} gamma={gg['gamma']:.2f}"
            )
        )
