"""The history API (DRF, ``/api/v1/``): query parameters in ``params``, output shapes in ``serializers``,
error bodies in ``errors``, thin views in ``views``. Every bad input is a 400 that names the field."""
