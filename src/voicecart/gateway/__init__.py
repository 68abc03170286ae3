"""Voice gateways: one adapter per platform (Dialogflow CX, Alexa) over one mapping to the resolve endpoint.

The gateway is its own service: it calls the engine over HTTP (KServe V1 predict and the feedback
intake) and never imports the engine. :mod:`voicecart.gateway.app` assembles the web app,
:mod:`voicecart.gateway.mapping` holds the one mapping every platform shares.
"""
