"""plugpay: pay-to-charge for electric vehicles."""
