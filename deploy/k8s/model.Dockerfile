# The model image: the promoted model (models/walletbot.tar.gz) as one layer,
# copied into each Rasa pod by its init container (deploy/k8s/base/rasa.yaml).
# Built from the models folder, after `walletbot promote`:
#
#   TAG=$(sha256sum models/walletbot.tar.gz | cut -c1-12)
#   docker build -f deploy/k8s/model.Dockerfile -t registry.example.com/walletbot-model:$TAG models/
#
# model.Dockerfile.dockerignore keeps the rest of models/ (candidates,
# history) out of the build context. busybox brings the `cp` the init
# container runs; the user is the code image's (uid 10001).
FROM busybox:1.36.1
COPY walletbot.tar.gz /model/walletbot.tar.gz
USER 10001:10001
