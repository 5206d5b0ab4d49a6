/*
 * ctl_proto.h - the control-socket protocol shared by pbftd and pbftctl.
 *
 * A Unix stream socket; each request is one line of JSON and gets one line
 * of JSON back:
 *
 *     {"v":1,"id":7,"cmd":"status","args":{}}
 *     {"v":1,"id":7,"ok":true, ...command fields...}
 *     {"v":1,"id":7,"ok":false,"error":"unknown command 'x'"}
 *
 * Commands: submit {data}, put {key,value}, get {key}, del {key}, status,
 * peers, restart {node}, stop {node}, shutdown. A line longer than
 * CTL_LINE_MAX gets an error reply and the connection is closed.
 */
#ifndef PBFT_CTL_PROTO_H
#define PBFT_CTL_PROTO_H

#define CTL_PROTO_VERSION 1
#define CTL_LINE_MAX (64 * 1024)

#endif
