"""`klambda deploy`: AWS SAM templates applied to local mode or a cluster.

    template   read, lint (cfn-lint) and translate (aws-sam-translator) a template; its
               functions with Globals merged and Parameters resolved
    sam        an AWS::Serverless::Function as klambda's: a CreateFunction request, its
               code, concurrency, alias, provisioned concurrency and deployment preference;
               what klambda does not do is named
    events     the seam where SAM's event types become klambda's triggers
    plan       what a deploy creates, changes and removes (pure)
    gradual    gradual deployments: the weight schedule, alarms, hooks (pure core)
    metrics    klambda's metrics read from a router or Prometheus, for alarms

The command (klambda.cli.deploy) applies a plan through the same control protocols as every
other verb, so a template deploys to a router or a cluster alike.
"""
