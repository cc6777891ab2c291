"""The virtual charger behind ``plugpay sim``, the demo and the tests."""
